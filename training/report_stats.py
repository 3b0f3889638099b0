"""Per-file measurements and the rules that flag suspicious files, for `training.report`.

`analyze_file` reads one clip raw (its own rate, channels and sample type) and measures level,
clipping and speech content; `flag_files` turns the measurements, plus what the dataset loader
already noticed in the headers, into one list of reasons per file.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from ser.audio import SAMPLE_RATE, AudioInfo, AudioLimits, load_audio, probe, voiced_intervals
from ser.datasets.base import Manifest
from ser.errors import NonFiniteAudioError

# The report must look at every file, however odd: no upload cap, long files allowed, no minimum.
REPORT_LIMITS = AudioLimits(max_bytes=1 << 31, max_duration_s=600.0, min_duration_s=0.0)
FULL_SCALE = 0.999  # |x| at or above this counts as a sample at full scale.
CLIP_FRACTION = 0.001  # More than 0.1 % of samples at full scale: the recording clipped.
IQR_FENCE = 3.0  # Durations outside [Q1 − 3·IQR, Q3 + 3·IQR] are outliers ("far out", Tukey).
MIN_SECONDS = 0.5  # Absolute bounds: shorter clips hold hardly a word, longer ones are not one utterance.
MAX_SECONDS = 10.0
# Loader reasons for well-named files of classes we do not model (RAVDESS songs and calm, CREMA-D
# has no surprise, ...): left out by design, counted in the report but not flagged as suspicious.
BY_DESIGN = ("is not modelled", "song, not speech")


@dataclass
class FileStats:
    """What one file holds. ``error`` is set (and the numbers left at 0) when it could not be read."""

    path: str
    duration: float = 0.0
    sample_rate: int = 0
    channels: int = 0
    format: str = ""
    subtype: str = ""
    peak: float = 0.0
    full_scale_fraction: float = 0.0
    rms_dbfs: float = -200.0
    voiced: float | None = None  # Seconds of speech-level audio; None when not measurable.
    non_finite: int = 0
    error: str | None = None


@dataclass
class Flags:
    """Reasons per file, in first-seen order, so each file is listed once with all its reasons."""

    reasons: dict[str, list[str]] = field(default_factory=dict)
    left_out: Counter[str] = field(default_factory=Counter)  # By-design reason → number of files.

    def add(self, path: str, reason: str) -> None:
        self.reasons.setdefault(path, []).append(reason)


def _read_raw(path: str) -> tuple[np.ndarray, AudioInfo]:
    """Samples as float32 (frames, channels), unscaled: float files keep values beyond ±1.

    Read with soundfile directly rather than `ser.audio.decode`, which refuses NaN/inf samples:
    the report has to count them.
    """
    info = probe(path, REPORT_LIMITS)  # Checks the declared header first, so a lying one costs nothing.
    with sf.SoundFile(path) as f:
        y = f.read(frames=info.frames, dtype="float32", always_2d=True)
    return y, info


def _level(y: np.ndarray, stats: FileStats) -> None:
    """Peak, share of samples at full scale, RMS level and non-finite count, on finite samples only."""
    finite = np.isfinite(y)
    stats.non_finite = int(y.size - finite.sum())
    x = np.abs(y[finite].astype(np.float64))
    if x.size:
        stats.peak = float(x.max())
        stats.full_scale_fraction = float(np.mean(x >= FULL_SCALE))
        stats.rms_dbfs = float(20.0 * np.log10(max(np.sqrt(np.mean(x**2)), 1e-10)))


def _voiced_seconds(path: str) -> float | None:
    """Speech-level seconds in the 16 kHz mono version the models see (the serving path)."""
    try:
        y = load_audio(path, REPORT_LIMITS)
    except NonFiniteAudioError:
        return None  # Flagged as non-finite already; the serving path refuses such files.
    return sum(end - start for start, end in voiced_intervals(y)) / SAMPLE_RATE


def analyze_file(path: str) -> FileStats:
    """Measure one file; never raises, so one broken file cannot stop the report."""
    stats = FileStats(path)
    try:
        y, info = _read_raw(path)
        stats.sample_rate, stats.channels = info.sample_rate, info.channels
        stats.format, stats.subtype = info.format, info.subtype
        stats.duration = len(y) / stats.sample_rate
        _level(y, stats)
        stats.voiced = _voiced_seconds(path)
    except Exception as e:  # libsndfile and our own SERError subclasses; reported, not fatal.
        stats.error = f"{type(e).__name__}: {e}"
    return stats


def duration_bounds(durations: list[float]) -> tuple[float, float]:
    """The [low, high] seconds outside which a clip is too short / too long for this corpus.

    The IQR is floored at a tenth of the median, so a corpus of equal-length clips does not
    flag a clip that is a few milliseconds longer.
    """
    q1, median, q3 = np.percentile(durations, [25, 50, 75])
    iqr = max(q3 - q1, 0.1 * median)
    return float(max(q1 - IQR_FENCE * iqr, MIN_SECONDS)), float(min(q3 + IQR_FENCE * iqr, MAX_SECONDS))


def _duration_reason(d: float, low: float, high: float) -> str | None:
    if d < low:
        return f"too short: {d:.2f} s (expected at least {low:.2f} s)"
    if d > high:
        return f"too long: {d:.2f} s (expected at most {high:.2f} s)"
    return None


def _level_reasons(s: FileStats) -> list[str]:
    reasons = []
    if s.non_finite:
        reasons.append(f"non-finite: {s.non_finite} NaN or infinite samples")
    if s.subtype.startswith(("FLOAT", "DOUBLE")) and s.peak > 1.0:
        # Any float sample past ±1 is clipped (or wraps) once converted to integer PCM.
        reasons.append(f"beyond full scale: float samples reach {s.peak:.2f}")
    elif s.full_scale_fraction > CLIP_FRACTION:
        reasons.append(f"clipped: {s.full_scale_fraction:.2%} of samples at full scale")
    if s.voiced is not None and s.voiced == 0:
        reasons.append("silent: no voiced region")
    return reasons


def file_reasons(s: FileStats, common_rate: int, bounds: tuple[float, float]) -> list[str]:
    """Every measured reason to look at ``s`` again (header-level reasons come from the loader)."""
    if s.error:
        return [f"unreadable: {s.error}"]
    reasons = []
    if s.sample_rate != common_rate:
        reasons.append(f"unusual sample rate: {s.sample_rate} Hz (most files: {common_rate} Hz)")
    if duration := _duration_reason(s.duration, *bounds):
        reasons.append(duration)
    return reasons + _level_reasons(s)


def flag_files(manifest: Manifest, stats: list[FileStats]) -> Flags:
    """Loader reasons (unreadable, extension, naming) first, then the measured ones."""
    flags = Flags()
    for skipped in manifest.skipped:
        if any(marker in skipped.reason for marker in BY_DESIGN):
            flags.left_out[skipped.reason] += 1
        else:
            flags.add(skipped.path, skipped.reason)
    readable = [s for s in stats if not s.error]
    common_rate = Counter(s.sample_rate for s in readable).most_common(1)[0][0] if readable else 0
    bounds = duration_bounds([s.duration for s in readable]) if readable else (MIN_SECONDS, MAX_SECONDS)
    for s in stats:
        for reason in file_reasons(s, common_rate, bounds):
            flags.add(s.path, reason)
    return flags


def relative(path: str, root: Path) -> str:
    """``path`` relative to the corpus root (as posix), so reports do not carry local paths."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return path
