"""Shared fixtures: generated audio, the small synthetic corpus, the real TESS copy when present."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
TESS_DIR = Path(os.environ.get("SER_TESS_DIR", REPO.parent / "shared" / "data" / "tess"))


def tone(seconds: float = 1.0, sr: int = 16_000, f0: float = 180.0, amp: float = 0.3) -> np.ndarray:
    """A speech-like test signal: a harmonic tone with a syllable-rate amplitude envelope."""
    t = np.arange(int(seconds * sr)) / sr
    harmonics = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 3.0 * t)
    return (amp * envelope * harmonics / 2.6).astype(np.float32)


def encode(y: np.ndarray, sr: int = 16_000, format: str = "WAV", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, sr, format=format, subtype=subtype)
    return buf.getvalue()


@pytest.fixture(scope="session")
def tess_dir() -> Path:
    if not (TESS_DIR / "TESS_Toronto_emotional_speech_set_data").is_dir() and not any(TESS_DIR.glob("*/*")):
        pytest.skip(f"TESS copy not found at {TESS_DIR}: set SER_TESS_DIR to run real-data tests")
    return TESS_DIR


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    """A small synthetic corpus (4 speakers × 7 emotions × 12 clips), generated once per run."""
    from ser.datasets import synthetic

    return synthetic.generate(tmp_path_factory.mktemp("synthetic"), clips_per_class=12)


# BentoML reads BENTOML_HOME once per process and memoises the home and the stores under it
# (simple_di SingletonFactory caches), so setting the variable later changes nothing by itself.
_BENTOML_MEMOISED = (
    "bentoml_home",
    "bento_store_dir",
    "tmp_bento_store_dir",
    "model_store_dir",
    "env_store_dir",
    "result_store_file",
    "cloud_config",
    "bento_store",
    "tmp_bento_store",
    "model_store",
)


def reset_bentoml_store() -> None:
    """Forget BentoML's memoised home and stores: the next use reads BENTOML_HOME again."""
    from bentoml._internal.configuration.containers import BentoMLContainer
    from simple_di import sentinel

    for name in _BENTOML_MEMOISED:
        getattr(BentoMLContainer, name)._cache = sentinel


@pytest.fixture()
def bentoml_home(tmp_path, monkeypatch) -> Path:
    """An empty, private BentoML store for this test."""
    home = tmp_path / "bentoml"
    monkeypatch.setenv("BENTOML_HOME", str(home))
    reset_bentoml_store()
    yield home
    reset_bentoml_store()  # Runs before monkeypatch restores the variable; the next use reads that.


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory, synthetic_dir) -> Path:
    """A BentoML home holding a small model (seed preset, synthetic corpus) as ser_lstm:latest."""
    from helpers import train_store

    home = tmp_path_factory.mktemp("served") / "bentoml"
    train_store(home, synthetic_dir)
    return home
