"""Berlin EMO-DB: `<nn><text><E><v>.<ext>`, all in one folder (`wav/` in the download).

For example `03a01Fa.wav` is speaker 03 saying text a01 happily (F = Freude), version a. The
emotion letters are German initials: W anger (Wut), L boredom (Langeweile, not modelled),
E disgust (Ekel), A fear (Angst), F happiness, T sadness (Trauer), N neutral.
"""

from __future__ import annotations

import re
from pathlib import Path

from ser.datasets.base import Manifest, NameParse, load_by_pattern, names_mostly_parse
from ser.labels import EMODB_LABELS

DATASET = "emodb"
PATTERN = "<nn><text><EMOTION><version> (e.g. 03a01Fa.wav)"
# Emotion letters come from the label table, so an unknown letter reads as a foreign name. Case is
# ignored (re-packaged copies lower-case names); letters are upper-cased before the lookup.
_NAME = re.compile(rf"(\d\d)([a-z]\d\d)([{''.join(EMODB_LABELS)}])([a-z])", re.IGNORECASE)
_UNMODELLED_NAMES = {"L": "boredom"}  # What the letters mapped to None in EMODB_LABELS stand for.


def _parse(path: Path) -> NameParse:
    match = _NAME.fullmatch(path.stem)
    if match is None:
        return None
    speaker, _text, letter, _version = match.groups()
    emotion = EMODB_LABELS[letter.upper()]
    if emotion is None:
        return f"emotion {_UNMODELLED_NAMES.get(letter.upper(), letter)} is not modelled"
    return emotion, f"emodb_{speaker}"


def load(root: str | Path) -> Manifest:
    return load_by_pattern(root, DATASET, _parse, "EMO-DB", PATTERN)


def looks_like(root: Path) -> bool:
    """True when most audio file names under ``root`` parse as EMO-DB names."""
    return names_mostly_parse(root, _parse)
