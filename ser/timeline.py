"""Per-segment predictions over a long recording, and how much speech time each emotion holds."""

from __future__ import annotations

import numpy as np


def owned_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The part of each (possibly overlapping) segment that is closer to its centre than to a neighbour's.

    Overlapping windows would count shared time twice; splitting at the midpoint between
    neighbouring centres gives every voiced sample to exactly one segment.
    """
    out = []
    for i, (start, end) in enumerate(spans):
        centre = (start + end) / 2
        if i > 0 and spans[i - 1][1] > start:  # Overlaps the previous segment.
            start = max(start, int((centre + sum(spans[i - 1]) / 2) / 2))
        if i + 1 < len(spans) and spans[i + 1][0] < end:
            end = min(end, int((centre + sum(spans[i + 1]) / 2) / 2))
        out.append((start, end))
    return out


def timeline(
    spans: list[tuple[int, int]], probs: np.ndarray, labels: tuple[str, ...], sample_rate: int
) -> dict:
    """Segments with their emotion and a summary: each emotion's share of the speech time."""
    segments, share = [], dict.fromkeys(labels, 0.0)
    for (start, end), (own_start, own_end), p in zip(spans, owned_spans(spans), probs, strict=True):
        best = int(np.argmax(p))
        segments.append(
            {
                "start_s": round(start / sample_rate, 3),
                "end_s": round(end / sample_rate, 3),
                "emotion": labels[best],
                "confidence": float(p[best]),
                "probabilities": {label: float(v) for label, v in zip(labels, p, strict=True)},
            }
        )
        share[labels[best]] += max(0, own_end - own_start)
    total = sum(share.values()) or 1
    return {"segments": segments, "summary": {k: round(v / total, 4) for k, v in share.items()}}
