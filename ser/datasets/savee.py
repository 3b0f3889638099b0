"""SAVEE (Surrey audio-visual expressed emotion): four male speakers DC, JE, JK and KL.

Two layouts are in circulation: flat names `DC_sa01.wav` (speaker prefix) and the original
`AudioData/DC/sa01.wav` (speaker folder, name `<code><nn>`). Codes are a (anger), d (disgust),
f (fear), h (happiness), n (neutral), sa (sadness) and su (surprise); `sa01` is sad, never
"s" + "a01", which the anchored pattern guarantees.
"""

from __future__ import annotations

import re
from pathlib import Path

from ser.datasets.base import Manifest, NameParse, load_by_pattern, names_mostly_parse
from ser.labels import SAVEE_LABELS

DATASET = "savee"
PATTERN = "<SPEAKER>_<code><nn> or <SPEAKER>/<code><nn> (e.g. DC_sa01.wav, DC/sa01.wav)"
SPEAKERS = ("DC", "JE", "JK", "KL")
# Longest codes first so the alternation tries "sa" before "a"; codes come from the label table.
_CODES = "|".join(map(re.escape, sorted(SAVEE_LABELS, key=len, reverse=True)))
_FLAT = re.compile(rf"({'|'.join(SPEAKERS)})_({_CODES})(\d\d)", re.IGNORECASE)
_BARE = re.compile(rf"({_CODES})(\d\d)", re.IGNORECASE)


def _parse(path: Path) -> NameParse:
    if match := _FLAT.fullmatch(path.stem):
        speaker, code, _take = match.groups()
    elif (match := _BARE.fullmatch(path.stem)) and path.parent.name.upper() in SPEAKERS:
        # A bare `a01` only counts inside a speaker folder: elsewhere it says nothing about SAVEE.
        (code, _take), speaker = match.groups(), path.parent.name
    else:
        return None
    emotion = SAVEE_LABELS[code.lower()]
    if emotion is None:
        return f"emotion {code.lower()} is not modelled"
    return emotion, speaker.upper()


def load(root: str | Path) -> Manifest:
    return load_by_pattern(root, DATASET, _parse, "SAVEE", PATTERN)


def looks_like(root: Path) -> bool:
    """True when most audio file names under ``root`` parse as SAVEE names."""
    return names_mostly_parse(root, _parse)
