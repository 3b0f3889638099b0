"""Augmentations of whole training batches, drawn afresh every epoch: mixup and time masks.

Mixup (Zhang et al., 2018): each batch is mixed with a shuffled copy of itself, one weight
λ ~ Beta(α, α) per pair, targets in proportion, so the model sees inputs between two emotions
(and, with one actress, between two renditions) instead of only her exact clips with certain
labels. Padded frames are zeros: a mixture is padded only where both clips are, so its mask is
the longer clip's.

Time masks (SpecAugment's, Park et al., 2019): spans of a clip's real steps set to zero — the
per-utterance mean, and the padding value, so the model's Masking layer skips them: the LSTM
hears the clip with pieces missing and cannot lean on any one syllable.
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


def time_mask(x: np.ndarray, masks: int, max_steps: int, rng: np.random.Generator) -> np.ndarray:
    """A copy of (n, steps, features) ``x`` with ``masks`` spans of 0 … max_steps steps zeroed per row,
    inside its real (non-zero) steps; at least one real step is always kept."""
    out = x.copy()
    real = np.any(x != 0, axis=2)
    for i in range(len(x)):
        n = int(real[i].sum())  # Real steps come first; padding follows.
        for _ in range(masks):
            width = int(rng.integers(0, max_steps + 1))
            width = min(width, n - 1)
            if width <= 0:
                continue
            start = int(rng.integers(0, n - width + 1))
            out[i, start : start + width] = 0.0
        if not np.any(out[i, :n] != 0):  # Together the masks may cover every real step: keep one.
            out[i, 0] = x[i, 0]
    return out


def batches(
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    seed: int,
    mixup: float = 0.0,
    time_masks: int = 0,
    mask_steps: int = 0,
):
    """A `keras.utils.PyDataset` of augmented batches, reshuffled every epoch, deterministic for a seed."""
    import keras

    class Augmented(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(x))

        def __len__(self) -> int:
            return -(-len(x) // batch_size)

        def __getitem__(self, i: int):
            rows = self.order[i * batch_size : (i + 1) * batch_size]
            bx, by = x[rows], y[rows]
            if time_masks:
                bx = time_mask(bx, time_masks, mask_steps, self.rng)
            if mixup:
                bx, by = mix(bx, by, mixup, self.rng)
            return bx, by

        def on_epoch_end(self) -> None:
            self.order = self.rng.permutation(len(x))

    return Augmented()
