"""Example clips for the demo: synthetic ones always, TESS ones when the local copy is present.

Synthetic clips are generated (deterministic, no download, ~0.1 s) into a cache folder the first
time the demo is built. TESS clips are read in place from ``SER_TESS_DIR`` or
``../shared/data/tess`` and never copied into the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from ser.labels import EMOTIONS

REPO = Path(__file__).resolve().parents[1]
LONG_GAP_S = 0.6  # Silence between the clips of the long example.


def pretty(emotion: str) -> str:
    """``pleasant_surprise`` → ``pleasant surprise``."""
    return emotion.replace("_", " ")


def cache_dir() -> Path:
    """``SER_CACHE_DIR`` or ~/.cache/ser (as training uses), ``demo`` inside it."""
    return Path(os.environ.get("SER_CACHE_DIR") or Path.home() / ".cache" / "ser") / "demo"


def synthetic_examples(root: Path | None = None) -> list[tuple[str, str]]:
    """(path, label) for one synthetic clip per emotion, then one long clip of all seven in turn."""
    from ser.datasets import synthetic

    out = synthetic.generate((root or cache_dir()) / "synthetic", clips_per_class=1, speakers=("SYA",))
    examples = []
    for emotion in EMOTIONS:
        path = next((out / f"SYA_{synthetic.EMOTION_CODES[emotion]}").glob("*.wav"))
        examples.append((str(path), f"synthetic · {pretty(emotion)}"))
    examples.append(
        (str(_long_clip(out, [p for p, _ in examples])), "synthetic · all seven in turn (timeline)")
    )
    return examples


def _long_clip(folder: Path, clips: list[str]) -> Path:
    """The clips joined with short pauses: a recording long enough for the timeline."""
    path = folder / "long_all_emotions.wav"
    if path.exists():
        return path
    parts, rate = [], None
    for clip in clips:
        y, sr = sf.read(clip, dtype="float32")
        rate = rate or sr
        parts += [y, np.zeros(int(LONG_GAP_S * sr), np.float32)]
    tmp = path.with_suffix(".tmp.wav")
    sf.write(tmp, np.concatenate(parts), rate, subtype="PCM_16")
    tmp.replace(path)  # Never leave a half-written example behind.
    return path


def tess_dir() -> Path | None:
    """The local TESS copy (``SER_TESS_DIR`` or ../shared/data/tess), or None when absent."""
    root = Path(os.environ.get("SER_TESS_DIR") or REPO.parent / "shared" / "data" / "tess")
    return root if root.is_dir() else None


def tess_examples(root: Path | None = None, speaker: str = "YAF") -> list[tuple[str, str]]:
    """(path, label) for the first clip of each emotion by ``speaker``; empty without TESS."""
    from ser.datasets import tess
    from ser.datasets.base import iter_audio_files

    root = root or tess_dir()
    if root is None:
        return []
    found: dict[str, Path] = {}
    for path in iter_audio_files(root):
        spk, emotion = tess._parse(path)
        if spk == speaker and emotion and emotion not in found:
            found[emotion] = path
        if len(found) == len(EMOTIONS):
            break
    return [(str(found[e]), f"TESS · {pretty(e)}") for e in EMOTIONS if e in found]


def all_examples() -> list[tuple[str, str]]:
    """The demo's example list: synthetic always, TESS when present. Never fails the demo."""
    examples = []
    for source in (synthetic_examples, tess_examples):
        try:
            examples += source()
        except Exception as e:  # A read-only cache or an odd TESS copy must not stop the service.
            print(f"gradio_demo: no {source.__name__.replace('_', ' ')}: {e}")
    return examples
