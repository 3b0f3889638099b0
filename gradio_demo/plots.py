"""Matplotlib figures for the demo: the analysed signal, and the emotion timeline.

Figures are built with `matplotlib.figure.Figure` (no pyplot state), so concurrent requests in
the service's threads do not share a current figure.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ser.audio import SAMPLE_RATE, AudioLimits, load_audio, voiced_intervals
from ser.labels import EMOTIONS

# One colour per emotion, the same in every figure.
COLOURS = {
    "angry": "#d62728",
    "disgust": "#8c8c00",
    "fear": "#9467bd",
    "happy": "#ff9f1c",
    "neutral": "#8c8c8c",
    "pleasant_surprise": "#17becf",
    "sad": "#1f77b4",
}
# The demo plots whatever the service accepted, so it decodes with generous limits.
PLOT_LIMITS = AudioLimits(max_bytes=200_000_000, max_duration_s=3600)
WAVE_POINTS = 2000  # Columns of the waveform's min/max envelope.
MAX_SPEC_COLUMNS = 4000


def _pretty(emotion: str) -> str:
    return emotion.replace("_", " ")


def _envelope(y: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, min, max) of ``y`` in ``columns`` equal slices: a waveform that stays cheap to draw."""
    columns = max(1, min(columns, len(y)))
    edges = np.linspace(0, len(y), columns + 1).astype(int)
    lo = np.minimum.reduceat(y, edges[:-1])
    hi = np.maximum.reduceat(y, edges[:-1])
    return edges[:-1] / SAMPLE_RATE, lo, hi


def _spectrogram(y: np.ndarray, n_fft: int = 512) -> tuple[np.ndarray, float]:
    """(dB magnitudes (freq, time), hop in seconds): centred Hann frames, at most MAX_SPEC_COLUMNS."""
    hop = max(n_fft // 4, int(np.ceil(len(y) / MAX_SPEC_COLUMNS)))
    padded = np.pad(y, (n_fft // 2, n_fft // 2 + hop))  # Frame i is centred on sample i * hop.
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][: len(y) // hop + 1]
    mag = np.abs(np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1)).T
    db = 20 * np.log10(np.maximum(mag, 1e-6))
    return np.maximum(db, db.max() - 80), hop / SAMPLE_RATE


def signal_figure(path: str) -> Figure:
    """Waveform (speech regions shaded) and spectrogram of the 16 kHz mono signal the model saw."""
    y = load_audio(path, PLOT_LIMITS)
    duration = len(y) / SAMPLE_RATE
    fig = Figure(figsize=(9, 4.2), layout="constrained")
    wave, spec = fig.subplots(2, 1, sharex=True, height_ratios=(1, 1.5))

    t, lo, hi = _envelope(y, WAVE_POINTS)
    wave.fill_between(t, lo, hi, color="#4f46e5", linewidth=0.6, step="post")
    for start, end in voiced_intervals(y):
        wave.axvspan(start / SAMPLE_RATE, end / SAMPLE_RATE, color="#c7d2fe", alpha=0.5, zorder=0, lw=0)
    peak = float(np.abs(y).max()) or 1.0
    wave.set_ylim(-1.05 * peak, 1.05 * peak)
    wave.set_ylabel("amplitude")
    wave.set_title(
        f"What was analysed: {duration:.1f} s, 16 kHz mono (speech shaded)", loc="left", fontsize=10
    )
    wave.set_yticks([])

    db, hop_s = _spectrogram(y)
    spec.imshow(
        db,
        origin="lower",
        aspect="auto",
        cmap="magma",
        extent=(-hop_s / 2, (db.shape[1] - 0.5) * hop_s, 0, SAMPLE_RATE / 2000),
        interpolation="nearest",
    )
    spec.set_ylabel("kHz")
    spec.set_xlabel("time (s)")
    spec.set_xlim(0, duration)
    return fig


def timeline_figure(result: dict) -> Figure:
    """The /timeline answer: each window's probabilities over time, and a band of the winning emotion."""
    segments = result["segments"]
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    band, probs = fig.subplots(2, 1, sharex=True, height_ratios=(0.35, 1.65))
    duration = float(result.get("duration_s") or (segments[-1]["end_s"] if segments else 1.0))

    centres = np.array([(s["start_s"] + s["end_s"]) / 2 for s in segments])
    # Each window owns the time closer to its centre than to its neighbours' (as the summary counts).
    bounds = [
        (
            max(s["start_s"], (centres[i - 1] + centres[i]) / 2) if i else s["start_s"],
            min(s["end_s"], (centres[i] + centres[i + 1]) / 2) if i + 1 < len(segments) else s["end_s"],
        )
        for i, s in enumerate(segments)
    ]
    for (start, end), s in zip(bounds, segments, strict=True):
        band.axvspan(start, end, color=COLOURS.get(s["emotion"], "#444"), lw=0)
        probs_here = [s["probabilities"].get(e, 0.0) for e in EMOTIONS]
        bottom = 0.0
        for emotion, p in zip(EMOTIONS, probs_here, strict=True):
            probs.bar(start, p, width=end - start, bottom=bottom, align="edge", color=COLOURS[emotion], lw=0)
            bottom += p
    band.set_yticks([])
    band.set_title("Emotion over time (one window every hop; gaps are silence)", loc="left", fontsize=10)
    probs.set_ylim(0, 1)
    probs.set_xlim(0, duration)
    probs.set_ylabel("probability")
    probs.set_xlabel("time (s)")
    fig.legend(
        handles=[Patch(color=COLOURS[e], label=_pretty(e)) for e in EMOTIONS],
        loc="outside right center",
        frameon=False,
        fontsize=9,
    )
    return fig
