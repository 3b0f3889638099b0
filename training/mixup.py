"""Mixup (Zhang et al., 2018): train on convex mixtures of two clips and of their targets.

Each batch is mixed with a shuffled copy of itself, one weight λ ~ Beta(α, α) per pair, so the
model sees inputs between two emotions (and, with one actress, between two renditions) with
targets in proportion, instead of only her exact clips with certain labels.
Padded frames are zeros: a mixture is padded only where both clips are, so its mask is the
longer clip's.
"""

from __future__ import annotations

import numpy as np


def mix(x: np.ndarray, y: np.ndarray, alpha: float, rng: np.random.Generator):
    """(x, y) of one batch → mixtures with a permutation of itself; shapes and dtypes kept."""
    lam = rng.beta(alpha, alpha, size=len(x)).astype(np.float32)
    lam = np.maximum(lam, 1.0 - lam)  # Each row stays nearer its own clip than its partner.
    other = rng.permutation(len(x))
    shape = (-1,) + (1,) * (x.ndim - 1)
    xm = lam.reshape(shape) * x + (1.0 - lam.reshape(shape)) * x[other]
    ym = lam[:, None] * y + (1.0 - lam[:, None]) * y[other]
    return xm.astype(x.dtype), ym.astype(y.dtype)


def batches(x: np.ndarray, y: np.ndarray, *, alpha: float, batch_size: int, seed: int):
    """A `keras.utils.PyDataset` of mixed batches, reshuffled every epoch, deterministic for a seed."""
    import keras

    class Mixed(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(x))

        def __len__(self) -> int:
            return -(-len(x) // batch_size)

        def __getitem__(self, i: int):
            rows = self.order[i * batch_size : (i + 1) * batch_size]
            return mix(x[rows], y[rows], alpha, self.rng)

        def on_epoch_end(self) -> None:
            self.order = self.rng.permutation(len(x))

    return Mixed()
