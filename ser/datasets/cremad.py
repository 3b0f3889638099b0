"""CREMA-D: `<actor>_<sentence>_<EMOTION>_<level>.<ext>`, all in one folder.

For example `1001_DFA_ANG_XX.wav` is actor 1001 (of 1001-1091) reading sentence DFA ("Don't
forget a jacket") angrily at an unspecified level (XX; otherwise LO, MD or HI). Codes are
matched case-insensitively because re-packaged copies sometimes lower-case the names.
"""

from __future__ import annotations

import re
from pathlib import Path

from ser.datasets.base import Manifest, NameParse, load_by_pattern, names_mostly_parse
from ser.labels import CREMAD_LABELS

DATASET = "cremad"
PATTERN = "<actor>_<sentence>_<EMOTION>_<level> (e.g. 1001_DFA_ANG_XX.wav)"
# Emotion codes come from the label table, so an unknown code reads as a foreign name. The level is
# loose ([A-Z]{1,2}) because a few distributed files carry a truncated one (e.g. `_X`).
_NAME = re.compile(
    rf"(\d{{4}})_([A-Z]{{3}})_({'|'.join(map(re.escape, CREMAD_LABELS))})_([A-Z]{{1,2}})", re.IGNORECASE
)


def _parse(path: Path) -> NameParse:
    match = _NAME.fullmatch(path.stem)
    if match is None:
        return None
    actor, _sentence, code, _level = match.groups()
    emotion = CREMAD_LABELS[code.upper()]
    if emotion is None:
        return f"emotion {code.upper()} is not modelled"
    return emotion, f"cremad_{actor}"


def load(root: str | Path) -> Manifest:
    return load_by_pattern(root, DATASET, _parse, "CREMA-D", PATTERN)


def looks_like(root: Path) -> bool:
    """True when most audio file names under ``root`` parse as CREMA-D names."""
    return names_mostly_parse(root, _parse)
