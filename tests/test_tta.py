"""Test-time speed copies (SER_TTA_SPEEDS): the pipeline step, the combination, the setting, the service.

The speaker-independent gain they buy is measured by `training.evaluate --tta` (README, ablation
table), not here: these tests check that the service computes exactly that.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import requests
from conftest import encode, reset_bentoml_store, tone
from helpers import serve

from ser.audio import load_audio
from ser.features import FeatureConfig
from ser.pipeline import Inputs, clip_copies, clip_inputs, speed_copy
from ser.predictor import clip_result, combine_segments
from ser.settings import parse_speeds
from ser.spec import ModelSpec
from training.data import _augment

SR = 16_000


def _speech(seconds: float = 1.5) -> np.ndarray:
    return load_audio(encode(tone(seconds, sr=SR), sr=SR))


def test_speed_copy_moves_duration_as_speed():
    y = _speech(2.0)
    assert len(speed_copy(y, 0.9, SR)) == pytest.approx(len(y) / 0.9, rel=1e-3)  # Slower: longer.
    assert len(speed_copy(y, 1.1, SR)) == pytest.approx(len(y) / 1.1, rel=1e-3)


def test_training_speed_augmentation_is_the_same_function():
    y = _speech()
    for speed in (0.8, 0.9, 1.1, 1.25):
        assert np.array_equal(_augment(y, f"speed_{speed}", seed=0, sr=SR), speed_copy(y, speed, SR))


def test_clip_copies_are_the_clip_then_each_speed():
    config = FeatureConfig()
    y = _speech()
    copies = clip_copies(y, config, (0.9, 1.1))
    assert len(copies) == 3
    plain = clip_inputs(y, config)
    assert np.array_equal(copies[0].x, plain.x) and copies[0].spans == plain.spans
    slow = clip_inputs(speed_copy(y, 0.9, SR), config)
    assert np.array_equal(copies[1].x, slow.x)
    assert len(clip_copies(y, config)) == 1


def test_a_copy_without_input_is_left_out(monkeypatch):
    import ser.pipeline

    config = FeatureConfig()
    y = _speech()
    real = ser.pipeline.speed_copy
    monkeypatch.setattr(  # The 1.1 copy comes out silent: it holds no speech, so no input.
        ser.pipeline, "speed_copy", lambda y, s, sr: np.zeros_like(y) if s == 1.1 else real(y, s, sr)
    )
    copies = clip_copies(y, config, (0.9, 1.1))
    assert len(copies) == 2
    assert np.array_equal(copies[1].x, clip_inputs(real(y, 0.9, SR), config).x)


def _spec(labels=("a", "b", "c")) -> SimpleNamespace:
    return SimpleNamespace(labels=labels)  # All clip_result reads of a spec.


def _inputs(spans) -> Inputs:
    return Inputs(np.zeros((len(spans), 1, 1), np.float32), np.ones(len(spans), np.int32), spans, 0)


def test_clip_result_of_copies_is_the_mean_of_their_clip_probabilities():
    spec = _spec()
    recording, slow = _inputs([(0, 100), (50, 250)]), _inputs([(0, 300)])
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]], np.float32)
    first = combine_segments(probs[:2], np.array([100, 200]))
    expected = (first + probs[2]) / 2
    got = clip_result(spec, probs, [recording, slow])
    assert list(got.probabilities.values()) == pytest.approx(expected.tolist(), abs=1e-6)
    assert got.emotion == spec.labels[int(np.argmax(expected))]
    single = clip_result(spec, probs[:2], recording)  # One copy: as before.
    assert list(single.probabilities.values()) == pytest.approx(first.tolist(), abs=1e-6)
    with pytest.raises(ValueError, match="3 rows of probabilities for 2 inputs"):
        clip_result(spec, probs, [recording])


def test_parse_speeds():
    assert parse_speeds("") == ()
    assert parse_speeds("0.9, 1.1") == (0.9, 1.1)
    assert parse_speeds("0.8,0.9,1.1,1.25,") == (0.8, 0.9, 1.1, 1.25)
    with pytest.raises(ValueError, match="'fast' is not a number"):
        parse_speeds("0.9,fast")
    for bad in ("1", "0.5", "2.0", "-1"):
        with pytest.raises(ValueError, match=r"within 0\.7–1\.4 and not 1"):
            parse_speeds(bad)
    with pytest.raises(ValueError, match="repeats a speed"):
        parse_speeds("0.9,0.9")


# --- served ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_service_serves_the_mean_over_the_copies(trained_store, tmp_path, monkeypatch):
    """/predict with SER_TTA_SPEEDS=0.9,1.1 answers what the predictor computes over the three
    copies (not what it computes for the clip alone), as a form or a body; /timeline still works."""
    import bentoml

    from ser.runtime import load_predictor
    from ser.spec import register_model_mel

    wav = encode(tone(1.5, sr=SR, f0=210.0), sr=SR)
    monkeypatch.setenv("BENTOML_HOME", str(trained_store))
    reset_bentoml_store()
    try:
        ref = bentoml.models.get("ser_lstm:latest")
        spec = ModelSpec.from_metadata(dict(ref.info.metadata))
        register_model_mel(ref, spec)
        predictor = load_predictor(ref)
        copies = clip_copies(load_audio(wav), spec.features, (0.9, 1.1))
        probs = predictor.forward(np.concatenate([predictor.prepare(c) for c in copies]))
        expected = clip_result(spec, probs, copies).probabilities
        plain = clip_result(spec, probs[: len(copies[0].x)], copies[0]).probabilities
    finally:
        monkeypatch.delenv("BENTOML_HOME")
        reset_bentoml_store()
    assert expected != pytest.approx(plain, abs=1e-4)  # The copies change the answer here.

    with serve(trained_store, tmp_path, SER_TTA_SPEEDS="0.9,1.1", SER_DEMO="0") as served:
        r = requests.post(f"{served.url}/predict", files={"audio": ("a.wav", wav)}, timeout=60)
        assert r.status_code == 200, r.text[:500]
        assert r.json()["probabilities"] == pytest.approx(expected, abs=1e-5)
        body = requests.post(
            f"{served.url}/predict", data=wav, headers={"Content-Type": "audio/wav"}, timeout=60
        )
        assert body.json() == r.json()
        timeline = requests.post(f"{served.url}/timeline", files={"audio": ("a.wav", wav)}, timeout=60)
        assert timeline.status_code == 200, timeline.text[:500]
