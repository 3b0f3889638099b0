"""Train / validation / test splits at the clip level, stratified by emotion.

Validation is always carved from the training part, so model selection never sees the test set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ser.datasets.base import Entry

VAL_FRACTION = 0.1


@dataclass
class Split:
    train: np.ndarray  # Indices into the entries list.
    val: np.ndarray
    test: np.ndarray
    description: dict


def _stratified(indices: np.ndarray, labels: list[str], size: int | float, seed: int):
    from sklearn.model_selection import train_test_split

    strata = [labels[i] for i in indices]
    return train_test_split(indices, test_size=size, stratify=strata, random_state=seed)


def make_split(
    entries: list[Entry],
    *,
    mode: str = "random",
    test_size: int = 400,
    test_speakers: list[str] | None = None,
    seed: int = 0,
) -> Split:
    """``mode="random"``: ``test_size`` clips stratified by emotion; ``"speaker"``: ``test_speakers``'
    clips are the test set and the other speakers train."""
    labels = [e.emotion for e in entries]
    everything = np.arange(len(entries))
    if mode == "random":
        if not 0 < test_size < len(entries):
            raise ValueError(f"--test-size {test_size} must be between 1 and {len(entries) - 1}")
        rest, test = _stratified(everything, labels, test_size, seed)
        description = {"mode": "random", "test_size": len(test), "seed": seed}
    elif mode == "speaker":
        speakers = sorted({e.speaker for e in entries})
        if (
            not test_speakers
            or not set(test_speakers) <= set(speakers)
            or set(test_speakers) == set(speakers)
        ):
            raise ValueError(f"--test-speakers {test_speakers} must be a proper subset of {speakers}")
        held = np.array([e.speaker in test_speakers for e in entries])
        rest, test = everything[~held], everything[held]
        description = {
            "mode": "speaker",
            "test_speakers": sorted(test_speakers),
            "train_speakers": sorted(set(speakers) - set(test_speakers)),
            "seed": seed,
        }
    else:
        raise ValueError(f"--split {mode!r}; allowed: random, speaker")
    train, val = _stratified(rest, labels, VAL_FRACTION, seed)
    return Split(np.sort(train), np.sort(val), np.sort(test), description)
