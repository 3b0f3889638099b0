"""Mixup on training batches (`training.mixup`): convex mixtures of inputs and targets, deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from training import mixup


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
    xm, ym = mixup.mix(x, y, 0.2, np.random.default_rng(1))
    assert xm.shape == x.shape and ym.shape == y.shape and xm.dtype == ym.dtype == np.float32
    np.testing.assert_allclose(ym.sum(axis=1), 1.0, atol=1e-6)
    # With one class per clip, each row's target names its two clips and their weights.
    eye = np.eye(len(x), dtype=np.float32)
    xm, ym = mixup.mix(x, eye, 0.2, np.random.default_rng(1))
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
        data = mixup.batches(x, y, alpha=0.4, batch_size=8, seed=3)
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
    xm, ym = mixup.mix(x, y, 1e-3, np.random.default_rng(0))
    assert ym.max(axis=1) == pytest.approx(1.0, abs=1e-2)
    np.testing.assert_allclose(xm, x, atol=0.1)
