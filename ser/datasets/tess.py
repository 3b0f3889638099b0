"""TESS (Toronto emotional speech set): `<SPEAKER>_<word>_<emotion>.<ext>` in per-class folders.

Real downloads differ in folder spelling (spaces or underscores, `OAF_Fear`,
`YAF_pleasant_surprised`) and extension, so the label and speaker are read from the *file
name*; the folder is only a fallback, and any disagreement is reported.
"""

from __future__ import annotations

import re
from pathlib import Path

from ser.datasets.base import Manifest, Skipped, iter_audio_files, probe_file
from ser.labels import TESS_LABELS

DATASET = "tess"
SPEAKERS = ("OAF", "YAF")  # older (64) and younger (26) actress


def _norm(text: str) -> str:
    return re.sub(r"[\s\-]+", "_", text.strip().lower())


def _parse(path: Path) -> tuple[str | None, str | None]:
    """(speaker, emotion) from a name like `OAF_back_angry` or a folder like `YAF pleasant surprised`."""
    parts = _norm(path.stem if path.suffix else path.name).split("_")
    speaker = parts[0].upper() if parts and parts[0].upper() in SPEAKERS else None
    emotion = None
    for start in range(1, len(parts)):  # The longest tail that names an emotion ("pleasant_surprised").
        tail = "_".join(parts[start:])
        if tail in TESS_LABELS:
            emotion = TESS_LABELS[tail]
            break
    return speaker, emotion


def load(root: str | Path) -> Manifest:
    root = Path(root)
    manifest = Manifest()
    for path in iter_audio_files(root):
        speaker, emotion = _parse(path)
        folder_speaker, folder_emotion = _parse(path.parent)
        if emotion is None and folder_emotion is None:
            manifest.skipped.append(Skipped(str(path), "no emotion in the file or folder name"))
            continue
        if emotion is None or speaker is None:
            manifest.skipped.append(
                Skipped(
                    str(path), "name does not follow <SPEAKER>_<word>_<emotion>; used the folder", fatal=False
                )
            )
        elif folder_emotion is not None and folder_emotion != emotion:
            manifest.skipped.append(
                Skipped(
                    str(path), f"file name says {emotion} but its folder says {folder_emotion}", fatal=False
                )
            )
        speaker = speaker or folder_speaker
        if speaker is None:
            manifest.skipped.append(Skipped(str(path), "no speaker (OAF or YAF) in the file or folder name"))
            continue
        probe_file(path, DATASET, emotion or folder_emotion, speaker, manifest)
    return manifest


def looks_like(root: Path) -> bool:
    """True when most audio file names under ``root`` parse as TESS names."""
    files = iter_audio_files(root)[:200]
    return bool(files) and sum(all(_parse(p)) for p in files) > len(files) // 2
