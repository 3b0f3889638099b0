"""training.data augmentations: what each one changes, and what it leaves alone."""

from __future__ import annotations

import conftest
import numpy as np
import pytest

from ser.model import DEFAULT_PRESET, PRESETS
from ser.pipeline import clip_inputs
from training.data import AUGMENTATIONS, _augment

SR = 16_000


def tone(hz: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def peak_hz(y: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.fft.rfftfreq(len(y), 1 / SR)[np.argmax(spectrum)])


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_every_augmentation_gives_finite_float32_audio(name):
    y = _augment(tone(220.0), name, seed=0, sr=SR)
    assert y.dtype == np.float32 and np.isfinite(y).all() and len(y) > 0


@pytest.mark.parametrize("speed", [0.8, 0.85, 1.05, 1.25])
def test_speed_changes_length_and_pitch_together(speed):
    y = _augment(tone(220.0), f"speed_{speed}", seed=0, sr=SR)
    assert len(y) == pytest.approx(SR / speed, rel=0.01)
    assert peak_hz(y) == pytest.approx(220.0 * speed, rel=0.02)


@pytest.mark.parametrize("semitones", [-2, -1, 1, 2])
def test_pitch_shift_keeps_the_tempo(semitones):
    y = _augment(tone(220.0), f"pitch_{semitones}", seed=0, sr=SR)
    assert len(y) == SR  # Same duration: the speaking rate is untouched.
    assert peak_hz(y) == pytest.approx(220.0 * 2 ** (semitones / 12), rel=0.02)


@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_tempo_changes_length_and_keeps_the_pitch(rate):
    y = _augment(tone(220.0), f"tempo_{rate}", seed=0, sr=SR)
    assert len(y) == pytest.approx(SR / rate, rel=0.01)
    assert peak_hz(y) == pytest.approx(220.0, rel=0.02)


def test_noise_is_at_its_snr_and_seeded():
    clean = tone(220.0)
    a, b = (_augment(clean, "noise_20db", seed=7, sr=SR) for _ in range(2))
    assert np.array_equal(a, b)
    snr = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean((a - clean).astype(np.float64) ** 2))
    assert snr == pytest.approx(20.0, abs=0.5)
    assert not np.array_equal(a, _augment(clean, "noise_20db", seed=8, sr=SR))


def test_prepare_augments_training_and_validation_clips_apart(monkeypatch):
    """preset.augment copies training clips, preset.val_augment validation clips; each lands in its part."""
    import dataclasses
    from types import SimpleNamespace

    from ser.model import get_preset
    from training import train
    from training.data import ClipSet
    from training.split import Split

    codes = {None: 0.0, "speed_0.9": 1.0, "speed_1.1": 2.0, "speed_0.7": 3.0}

    def fake_extract(entries, config, augmentation=None, workers=None):
        n = len(entries)
        x = np.full((n, 2, 3), codes[augmentation], np.float32)
        return ClipSet(x, np.full(n, 2), np.array(entries), np.arange(n), [])

    monkeypatch.setattr(train, "extract", fake_extract)
    preset = dataclasses.replace(
        get_preset("bilstm"), augment=("speed_0.9", "speed_1.1"), val_augment=("speed_0.7",)
    )
    split = Split(train=np.array([0, 2, 4]), val=np.array([1, 5]), test=np.array([3]), description={})
    features, augmented = train.prepare(SimpleNamespace(entries=list(range(6))), preset, split)
    x, _, y = train._joined([features, *augmented], split.train)
    assert sorted(set(x[:, 0, 0])) == [0.0, 1.0, 2.0] and sorted(set(y)) == [0, 2, 4]
    x, _, y = train._joined([features, *augmented], split.val)
    assert sorted(set(x[:, 0, 0])) == [0.0, 3.0] and sorted(set(y)) == [1, 5]


def test_tta_averages_each_clip_over_its_copies(monkeypatch):
    """training.evaluate --tta: a clip's prediction is the mean over the copies that yielded input."""
    from types import SimpleNamespace

    from training import evaluate
    from training.data import ClipSet

    # Class 0 from the recording, class 1 twice as sure from the copy: the mean picks class 1.
    onehot = {0.0: [0.6, 0.4], 1.0: [0.1, 0.9]}
    predictor = SimpleNamespace(
        forward=lambda x: np.array([onehot[float(v)] for v in x[:, 0, 0]], np.float32),
        spec=SimpleNamespace(norm=SimpleNamespace(apply=lambda x, lengths: x), features=None),
    )

    def clipset(values, clips):
        n = len(values)
        x = np.array(values, np.float32)[:, None, None] * np.ones((n, 2, 3), np.float32)
        return ClipSet(x, np.full(n, 2), np.array([7, 8][:n]), np.array(clips), [])

    # The copy of clip 8 yielded no input: its own probabilities stand.
    monkeypatch.setattr(evaluate, "extract", lambda entries, config, augmentation: clipset([1.0], [0]))
    held_out = clipset([0.0, 0.0], [3, 5])
    manifest = SimpleNamespace(entries=list(range(6)))
    y_true, y_pred = evaluate._averaged_predictions(
        [predictor], held_out, manifest, np.array([3, 5]), ["speed_1.1"]
    )
    assert list(y_true) == [7, 8] and list(y_pred) == [1, 0]


def test_ensemble_averages_each_clip_over_its_models():
    """training.evaluate --ensemble: a clip's prediction is the mean over the models, so one sure
    model outvotes one that leans the other way, and models that agree keep their answer."""
    from types import SimpleNamespace

    from training import evaluate
    from training.data import ClipSet

    def model(table):
        return SimpleNamespace(
            forward=lambda x: np.array([table[int(v)] for v in x[:, 0, 0]], np.float32),
            spec=SimpleNamespace(norm=SimpleNamespace(apply=lambda x, lengths: x), features=None),
        )

    # Clip 0: the first model leans to class 0 (0.6), the second is sure of class 1 (0.95).
    # Clip 1: both say class 0.
    first = model({0: [0.6, 0.4], 1: [0.8, 0.2]})
    second = model({0: [0.05, 0.95], 1: [0.7, 0.3]})
    held_out = ClipSet(
        np.array([0.0, 1.0], np.float32)[:, None, None] * np.ones((2, 2, 3), np.float32),
        np.full(2, 2),
        np.array([1, 0]),
        np.array([0, 1]),
        [],
    )
    manifest = SimpleNamespace(entries=[0, 1])
    clips = np.array([0, 1])
    y_true, y_pred = evaluate._averaged_predictions([first, second], held_out, manifest, clips, [])
    assert list(y_true) == [1, 0] and list(y_pred) == [1, 0]
    assert list(evaluate._averaged_predictions([first], held_out, manifest, clips, [])[1]) == [0, 0]


def test_pseudo_labels_take_each_class_surest_share():
    """training.evaluate --pseudo-labels: per predicted class, the most confident of an equal share."""
    from types import SimpleNamespace

    from training import evaluate
    from training.data import ClipSet

    # Six clips, one segment each; x carries the probability of class 0.
    p0 = np.array([0.9, 0.8, 0.6, 0.3, 0.45, 0.1], np.float32)
    predictor = SimpleNamespace(
        forward=lambda x: np.stack([x[:, 0, 0], 1 - x[:, 0, 0]], axis=1),
        spec=SimpleNamespace(norm=SimpleNamespace(apply=lambda x, lengths: x), labels=("a", "b")),
    )
    truth = np.array([0, 0, 1, 1, 1, 0])
    held_out = ClipSet(
        p0[:, None, None] * np.ones((6, 2, 3), np.float32), np.full(6, 2), truth, np.arange(6), []
    )
    # Share per class: 2/3 of 6 / 2 = 2 clips. Class a: clips 0 and 1 (0.9, 0.8; 2 at 0.6 is left).
    # Class b: clips 5 and 3 (0.9, 0.7; 4 at 0.55 is left).
    chosen, accuracy = evaluate._pseudo_labels(predictor, held_out, 2 / 3)
    assert chosen == {0: 0, 1: 0, 5: 1, 3: 1}
    assert accuracy == 0.75  # Clip 5 is really class a.


@pytest.mark.parametrize("gain_db", [-12.0, -6.0, 6.0, 20.0])
def test_gain_is_no_augmentation_because_the_model_inputs_do_not_see_it(gain_db):
    """Why the ablation has no gain augmentation: loudness is normalised before the features, so a
    gained copy would train on the very inputs the clip already gives. (Far quieter copies do
    differ: their softest frames sink under the -60 dBFS floor and leave the voiced region.)"""
    y = np.concatenate([np.zeros(4000, np.float32), conftest.tone(1.5), np.zeros(4000, np.float32)])
    config = PRESETS[DEFAULT_PRESET].features
    plain = clip_inputs(y, config)
    gained = clip_inputs((y * 10 ** (gain_db / 20)).astype(np.float32), config)
    assert plain.spans == gained.spans
    np.testing.assert_allclose(gained.x, plain.x, atol=1e-3)
