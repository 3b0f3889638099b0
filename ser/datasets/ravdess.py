"""RAVDESS: `MM-VV-EE-II-SS-RR-AA.<ext>` in per-actor folders such as `Actor_12`.

The seven two-digit fields are modality (01 audio-video, 02 video-only, 03 audio-only), vocal
channel (01 speech, 02 song), emotion, intensity, statement, repetition and actor; for example
`Actor_12/03-01-05-01-02-01-12.wav` is actor 12 saying statement 2 angrily, audio only. Labels and
speaker come from the name alone (the folder is not needed); songs and *calm* clips are left out.
"""

from __future__ import annotations

import re
from pathlib import Path

from ser.datasets.base import Manifest, NameParse, load_by_pattern, names_mostly_parse
from ser.labels import RAVDESS_LABELS

DATASET = "ravdess"
PATTERN = "MM-VV-EE-II-SS-RR-AA (e.g. 03-01-05-01-02-01-12.wav)"
# Emotion codes are taken from the label table so a code it does not list reads as a foreign name.
_NAME = re.compile(
    rf"(0[123])-(0[12])-({'|'.join(map(re.escape, RAVDESS_LABELS))})-(\d\d)-(\d\d)-(\d\d)-(\d\d)"
)
_UNMODELLED_NAMES = {"02": "calm"}  # What the codes mapped to None in RAVDESS_LABELS stand for.


def _parse(path: Path) -> NameParse:
    match = _NAME.fullmatch(path.stem)
    if match is None:
        return None
    _modality, channel, code, _intensity, _statement, _repetition, actor = match.groups()
    if channel == "02":
        return "song, not speech"
    emotion = RAVDESS_LABELS[code]
    if emotion is None:
        return f"emotion {_UNMODELLED_NAMES.get(code, code)} is not modelled"
    return emotion, f"ravdess_{int(actor):02d}"


def load(root: str | Path) -> Manifest:
    return load_by_pattern(root, DATASET, _parse, "RAVDESS", PATTERN)


def looks_like(root: Path) -> bool:
    """True when most audio file names under ``root`` parse as RAVDESS names."""
    return names_mostly_parse(root, _parse)
