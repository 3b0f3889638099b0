"""PNG figures of the data report: class counts, durations, one example clip per emotion."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ser.audio import SAMPLE_RATE
from training.plots import _plt

DYNAMIC_RANGE_DB = 80.0  # Spectrogram colours span this far below the loudest bin.
MAX_GROUPED_SPEAKERS = 12  # Beyond this, one bar per speaker is unreadable; plot label totals instead.


def counts_png(per_label_speaker: dict[str, dict[str, int]], path: Path) -> None:
    """Grouped bars: one group per emotion, one bar per speaker (or totals for many speakers)."""
    plt = _plt()
    labels = list(per_label_speaker)
    speakers = sorted({s for row in per_label_speaker.values() for s in row})
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(labels)), 4.2))
    x = np.arange(len(labels))
    if len(speakers) <= MAX_GROUPED_SPEAKERS:
        width = 0.8 / max(len(speakers), 1)
        for i, speaker in enumerate(speakers):
            heights = [per_label_speaker[label].get(speaker, 0) for label in labels]
            bars = ax.bar(x + (i - (len(speakers) - 1) / 2) * width, heights, width, label=speaker)
            ax.bar_label(bars, fontsize=7)
        ax.legend(title="speaker", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # Off the bars.
    else:
        bars = ax.bar(x, [sum(per_label_speaker[label].values()) for label in labels], 0.6)
        ax.bar_label(bars, fontsize=8)
        ax.set_title(f"{len(speakers)} speakers (per-speaker counts in report.md)")
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_ylabel("clips")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def durations_png(durations: list[float], bounds: tuple[float, float], path: Path) -> None:
    """Histogram of clip lengths with the too-short / too-long bounds as dashed lines."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.hist(durations, bins=60, color="tab:blue", alpha=0.85)
    for bound, name in zip(bounds, ("too short below", "too long above"), strict=True):
        ax.axvline(bound, color="tab:red", linestyle="--", linewidth=1)
        ax.annotate(
            f"{name} {bound:.2f} s",
            (bound, 0.95),
            xycoords=("data", "axes fraction"),
            fontsize=8,
            rotation=90,
            ha="right",
            va="top",
            color="tab:red",
        )
    ax.set_xlabel("duration (s)")
    ax.set_ylabel("clips")
    ax.set_yscale("log")  # A handful of outliers must stay visible next to thousands of normal clips.
    ax.set_ylim(bottom=0.5)  # So a bin holding a single clip still shows as a bar.
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def example_png(y: np.ndarray, title: str, path: Path) -> None:
    """Waveform and log-power spectrogram of one clip, as the models hear it (16 kHz mono)."""
    plt = _plt()
    fig, (wave, spec) = plt.subplots(2, 1, figsize=(8, 5), sharex=True, height_ratios=[1, 1.6])
    t = np.arange(len(y)) / SAMPLE_RATE
    wave.plot(t, y, linewidth=0.5, color="tab:blue")
    wave.set_ylabel("amplitude")
    wave.set_title(title, fontsize=10)
    # 32 ms windows with 75 % overlap: fine enough in time for syllables, in frequency for pitch.
    _, _, _, image = spec.specgram(y, NFFT=512, Fs=SAMPLE_RATE, noverlap=384, cmap="magma", scale="dB")
    high = image.get_clim()[1]
    image.set_clim(high - DYNAMIC_RANGE_DB, high)  # Digital silence would otherwise squash the colours.
    spec.set_ylabel("frequency (Hz)")
    spec.set_xlabel("time (s)")
    fig.colorbar(image, ax=[wave, spec], label="power (dB)", shrink=0.6)
    fig.savefig(path, dpi=100)
    plt.close(fig)
