"""`python -m loadtests.forward`'s measure of whether a runtime lets the event loop's work run beside it."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np

from loadtests.forward import beside_model, voiced_clip
from ser.features import FeatureConfig
from ser.pipeline import clip_inputs


class Fake:
    """A predictor whose forward either waits outside the GIL (as a runtime that releases it) or
    computes in Python, holding it between the interpreter's switches."""

    def __init__(self, holds_gil: bool) -> None:
        self.spec = SimpleNamespace(features=FeatureConfig())
        self.holds_gil = holds_gil

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.holds_gil:
            end = time.perf_counter() + 0.005
            while time.perf_counter() < end:
                pass
        else:
            time.sleep(0.005)
        return np.zeros((len(x), 7), np.float32)


def test_the_clip_is_voiced_work_like_a_recordings():
    y = voiced_clip()
    assert y.dtype == np.float32 and len(y) == 32_000
    inputs = clip_inputs(y, FeatureConfig())
    assert inputs.speech_samples > 0.8 * len(y) and len(inputs.x) >= 1  # Voiced throughout.


def test_a_forward_that_releases_the_gil_barely_slows_the_features():
    out = beside_model(Fake(holds_gil=False), np.zeros((4, 1)), seconds=1.0)
    assert out["features_ms_alone"] > 0 and out["slowdown"] < 2.0
    assert 0 < out["model_clips_per_s"] <= 4 / 0.005


def test_a_forward_that_holds_the_gil_slows_them():
    assert beside_model(Fake(holds_gil=True), np.zeros((4, 1)), seconds=1.0)["slowdown"] >= 3.0
