"""Batch augmentations (`training.batch_augment`): mixup's convex mixtures, time masks, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from training import batch_augment


def _batch(n=16, steps=10, features=3, classes=7, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, steps, features)).astype(np.float32)
    lengths = rng.integers(1, steps + 1, n)
    for i, length in enumerate(lengths):
        x[i, length:] = 0.0  # Padded as training pads: all-zero frames.
    y = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, n)]
    return x, y, lengths


def test_mixtures_are_convex_and_targets_stay_distributions():
    x, y, lengths = _batch()
    xm, ym = batch_augment.mix(x, y, 0.2, np.random.default_rng(1))
    assert xm.shape == x.shape and ym.shape == y.shape and xm.dtype == ym.dtype == np.float32
    np.testing.assert_allclose(ym.sum(axis=1), 1.0, atol=1e-6)
    # With one class per clip, each row's target names its two clips and their weights.
    eye = np.eye(len(x), dtype=np.float32)
    xm, ym = batch_augment.mix(x, eye, 0.2, np.random.default_rng(1))
    for i in range(len(x)):
        lam = ym[i, i]
        assert lam >= 0.5 - 1e-6  # Each row stays nearer its own clip.
        j = int(np.argsort(ym[i])[-2]) if lam < 1 else i
        np.testing.assert_allclose(xm[i], lam * x[i] + (1 - lam) * x[j], atol=1e-5)
        # Padded only where both clips are: the mixture is as long as the longer one.
        real = np.abs(xm[i]).sum(axis=1) > 0
        assert real.sum() == max(lengths[i], lengths[j])


def test_batches_cover_every_clip_each_epoch_and_repeat_for_a_seed():
    x, y, _ = _batch(n=20)
    runs = []
    for _ in range(2):
        data = batch_augment.batches(x, y, mixup=0.4, time_masks=2, mask_steps=3, batch_size=8, seed=3)
        assert len(data) == 3
        epochs = []
        for _ in range(2):
            epochs.append([data[i] for i in range(len(data))])
            data.on_epoch_end()
        runs.append(epochs)
        assert sum(len(b[0]) for b in epochs[0]) == 20
    for a, b in zip(runs[0], runs[1], strict=True):
        for (xa, ya), (xb, yb) in zip(a, b, strict=True):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(runs[0][0][0][0], runs[0][1][0][0])  # Reshuffled between epochs.


def test_alpha_near_zero_leaves_the_batch_almost_unmixed():
    x, y, _ = _batch()
    xm, ym = batch_augment.mix(x, y, 1e-3, np.random.default_rng(0))
    assert ym.max(axis=1) == pytest.approx(1.0, abs=1e-2)
    np.testing.assert_allclose(xm, x, atol=0.1)


def test_time_masks_zero_spans_inside_the_real_steps_only():
    x, _, lengths = _batch(n=64, steps=20)
    out = batch_augment.time_mask(x, masks=2, max_steps=5, rng=np.random.default_rng(0))
    real_before = np.any(x != 0, axis=2)
    real_after = np.any(out != 0, axis=2)
    assert not np.any(real_after & ~real_before)  # Padding stays padding.
    kept = real_after == real_before
    np.testing.assert_array_equal(out[kept], x[kept])  # Steps not masked are untouched.
    dropped = real_before.sum(axis=1) - real_after.sum(axis=1)
    assert dropped.max() <= 10 and dropped.sum() > 0
    assert real_after.sum(axis=1).min() >= 1  # Every clip keeps a real step.
    assert np.all(real_after[lengths == 1] == real_before[lengths == 1])  # One step: nothing to mask.


def test_time_masks_leave_the_input_alone():
    x, _, _ = _batch()
    before = x.copy()
    batch_augment.time_mask(x, masks=3, max_steps=8, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(x, before)
