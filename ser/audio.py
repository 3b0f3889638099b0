"""Bytes or a path → clean mono float32 audio at `SAMPLE_RATE`, and where the speech is in it.

The format is decided by the content (libsndfile sniffs the header), never by a file name.
Limits are checked on the *declared* header values before any sample is decoded, and decoding
never reads more than the limit allows, so a tiny file that declares hours of audio costs nothing.
Training, evaluation, the service and the demo all call these functions.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ser.errors import (
    AudioTooLargeError,
    AudioTooLongError,
    AudioTooShortError,
    EmptyAudioError,
    InvalidAudioError,
    NonFiniteAudioError,
    NoSpeechError,
    UnsupportedAudioError,
)

SAMPLE_RATE = 16_000  # Hz; every model and feature works at this rate.
TARGET_DBFS = -20.0  # RMS level of the voiced part after loudness normalisation.
FRAME_S = 0.025  # Frame length of the energy detector (400 samples at 16 kHz).
FRAME_HOP_S = 0.010  # Its hop (160 samples).
VOICED_TOP_DB = 40.0  # Frames quieter than the loudest by more than this are not speech.
SILENCE_FLOOR_DBFS = -60.0  # Frames below this absolute level are never speech.
MIN_GAP_S = 0.30  # Pauses shorter than this do not split a voiced region.
MIN_REGION_S = 0.10  # Shorter bursts (clicks) are not speech.
REGION_PAD_S = 0.05  # Context kept either side of a voiced region.
# Formats we accept, by libsndfile's name for the container. Others that libsndfile can read
# (VOC, PAF, …) are refused: nobody records speech in them, and each is more attack surface.
ACCEPTED_FORMATS = frozenset({"WAV", "WAVEX", "RF64", "W64", "AIFF", "FLAC", "OGG", "MP3", "CAF"})
# libsndfile's frame count for a stream that does not declare its length (SF_COUNT_MAX), e.g. a
# FLAC whose STREAMINFO says 0 samples, as `flac -` or ffmpeg write to a pipe. Legal: decoded up
# to the duration limit like any other file.
UNKNOWN_FRAMES = 2**63 - 1
READ_BLOCK = 1 << 16  # Frames decoded at a time; each block is downmixed at once (see `decode`).


@dataclass(frozen=True)
class AudioLimits:
    """What an input may declare. Every field is checked before decoding."""

    max_bytes: int = 20_000_000
    max_duration_s: float = 30.0
    min_duration_s: float = 0.25
    max_channels: int = 8
    min_sample_rate: int = 4_000
    max_sample_rate: int = 384_000


@dataclass(frozen=True)
class AudioInfo:
    """What a header declares (``duration_s`` = frames / sample_rate)."""

    format: str
    subtype: str
    sample_rate: int
    channels: int
    frames: int  # `UNKNOWN_FRAMES` when the header does not say.

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate

    @property
    def length_known(self) -> bool:
        return self.frames != UNKNOWN_FRAMES


def _reason(e: Exception) -> str:
    """libsndfile's reason without the file name or object it quotes (paths never reach users)."""
    return str(e).rsplit(": ", 1)[-1].strip() or type(e).__name__


def _open(data: bytes | str | Path) -> sf.SoundFile:
    """Open with libsndfile, wrapping its errors once into `InvalidAudioError`."""
    source = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else str(data)
    try:
        return sf.SoundFile(source)
    except Exception as e:  # libsndfile's LibsndfileError, RuntimeError, TypeError on junk.
        raise InvalidAudioError(
            "could not read the audio header: not a supported audio file "
            f"(accepted: WAV, AIFF, FLAC, OGG/Vorbis, MP3): {_reason(e)}"
        ) from e


def check_info(info: AudioInfo, limits: AudioLimits) -> None:
    """Raise the matching `SERError` when a header declares something outside ``limits``."""
    if info.format not in ACCEPTED_FORMATS:
        raise InvalidAudioError(
            f"audio container {info.format} is not accepted; use WAV, AIFF, FLAC, OGG/Vorbis or MP3"
        )
    if not 1 <= info.channels <= limits.max_channels:
        raise UnsupportedAudioError(f"{info.channels} channels declared; allowed: 1 to {limits.max_channels}")
    if not limits.min_sample_rate <= info.sample_rate <= limits.max_sample_rate:
        raise UnsupportedAudioError(
            f"sample rate {info.sample_rate} Hz declared; allowed: "
            f"{limits.min_sample_rate} to {limits.max_sample_rate} Hz"
        )
    if info.frames <= 0:
        raise EmptyAudioError("the audio declares no samples")
    if not info.length_known:
        return  # Checked while decoding: never more than the limit is read.
    if info.duration_s > limits.max_duration_s:
        raise AudioTooLongError(
            f"audio is {info.duration_s:.1f} s long; the limit is {limits.max_duration_s:g} s"
        )
    if info.duration_s < limits.min_duration_s:
        raise AudioTooShortError(
            f"audio is {info.duration_s:.3f} s long; at least {limits.min_duration_s:g} s is needed"
        )


def probe(data: bytes | str | Path, limits: AudioLimits | None = None) -> AudioInfo:
    """Read only the header of ``data`` and check it against ``limits`` (default limits if None)."""
    limits = limits or AudioLimits()
    _check_size(data, limits)
    with _open(data) as f:
        info = AudioInfo(f.format, f.subtype, int(f.samplerate), int(f.channels), int(f.frames))
    check_info(info, limits)
    return info


def _check_size(data: bytes | str | Path, limits: AudioLimits) -> None:
    size = len(data) if isinstance(data, (bytes, bytearray, memoryview)) else Path(data).stat().st_size
    if size == 0:
        raise EmptyAudioError("the upload is empty (0 bytes); send a WAV, AIFF, FLAC, OGG or MP3 file")
    if size > limits.max_bytes:
        raise AudioTooLargeError(f"upload is {size:,} bytes; the limit is {limits.max_bytes:,} bytes")


def _read_block(f: sf.SoundFile, frames: int, info: AudioInfo) -> np.ndarray:
    """Up to ``frames`` frames (fewer at the end of the data), as float32 (frames, channels)."""
    if info.length_known:
        try:
            return f.read(frames=frames, dtype="float32", always_2d=True)
        except Exception as e:
            raise InvalidAudioError(f"the audio data is corrupt or truncated: {_reason(e)}") from e
    # libsndfile 1.2.2 decodes the last frames of a stream of unknown length into the buffer, then
    # fails ("Internal psf_fseek() failed") without saying how many it wrote. Decoded integer
    # samples are never NaN, so the rows before the first NaN of a NaN-filled buffer are the data.
    out = np.full((frames, info.channels), np.nan, np.float32)
    try:
        f.read(out=out)
    except Exception:
        nan = np.isnan(out[:, 0])
        return out[: int(nan.argmax()) if nan.any() else frames]
    return out


def decode(
    data: bytes | str | Path, limits: AudioLimits | None = None, *, mono: bool = False
) -> tuple[np.ndarray, AudioInfo]:
    """Decode to float32 of shape (frames, channels) at the file's own rate, within ``limits``.

    Reads at most the number of frames the duration limit allows (plus one, to notice a header
    that under-declares), so a lying header cannot make us decode more than the limit. With
    ``mono``, each block of `READ_BLOCK` frames is averaged over its channels as it is read and
    the result has one channel: a small file of 8-channel 384 kHz silence (FLAC compresses it
    ~1000:1) then costs one channel's worth of memory, not eight.
    """
    limits = limits or AudioLimits()
    _check_size(data, limits)
    with _open(data) as f:
        info = AudioInfo(f.format, f.subtype, int(f.samplerate), int(f.channels), int(f.frames))
        check_info(info, limits)
        cap = int(limits.max_duration_s * info.sample_rate) + 1
        want = min(info.frames, cap)
        # Pages of an untouched np.empty are never allocated: a header that over-declares costs nothing.
        y = np.empty((want, 1 if mono else info.channels), np.float32)
        got = 0
        while got < want:
            n = min(READ_BLOCK, want - got)
            block = _read_block(f, n, info)
            with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf are refused below.
                y[got : got + len(block)] = to_mono(block)[:, None] if mono else block
            got += len(block)
            if len(block) < n:
                break  # The end of the data.
        y = y[:got]
    if len(y) >= cap:
        raise AudioTooLongError(f"audio is longer than the limit of {limits.max_duration_s:g} s")
    if len(y) < limits.min_duration_s * info.sample_rate:
        raise AudioTooShortError(
            f"only {len(y) / info.sample_rate:.3f} s of audio could be decoded; "
            f"at least {limits.min_duration_s:g} s is needed"
        )
    if not np.isfinite(y).all():
        raise NonFiniteAudioError("the audio contains NaN or infinite samples")
    return y, info


def to_mono(y: np.ndarray) -> np.ndarray:
    """(frames, channels) or (frames,) → (frames,) float32, the mean of the channels.

    One channel is taken as it is (the same values the mean would give): the float64 mean and
    its copy back were over a third of the time `decode` spent on a mono TESS clip.
    """
    if y.ndim == 2 and y.shape[1] == 1:
        return y[:, 0].astype(np.float32, copy=False)
    return y.mean(axis=1, dtype=np.float64).astype(np.float32) if y.ndim == 2 else y.astype(np.float32)


RESAMPLERS_PER_THREAD = 8  # Rate pairs kept; uploads may carry any rate, so the cache is bounded.
_resamplers = threading.local()


def resample(y: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling of mono float32 with soxr (high quality); a no-op when the rates match.

    One soxr stream per rate pair and thread, cleared before each signal: the same samples as
    `soxr.resample` (a test checks) without designing the filter anew for every call, which was
    about 40 % of the one-shot call's time on a TESS clip (24,414 → 16,000 Hz).
    """
    y = np.ascontiguousarray(y, dtype=np.float32)
    if sr_in == sr_out:
        return y
    stream = _resampler(int(sr_in), int(sr_out))
    stream.clear()
    return stream.resample_chunk(y, last=True)


def _resampler(sr_in: int, sr_out: int) -> soxr.ResampleStream:
    cache = getattr(_resamplers, "streams", None)
    if cache is None:
        cache = _resamplers.streams = OrderedDict()
    key = (sr_in, sr_out)
    stream = cache.pop(key, None)
    if stream is None:
        stream = soxr.ResampleStream(sr_in, sr_out, 1, dtype="float32", quality="HQ")
    cache[key] = stream  # Most recently used last.
    while len(cache) > RESAMPLERS_PER_THREAD:
        cache.popitem(last=False)
    return stream


def load_audio(data: bytes | str | Path, limits: AudioLimits | None = None) -> np.ndarray:
    """Bytes or a path → mono float32 at `SAMPLE_RATE` with the DC offset removed.

    Raises a `ser.errors.SERError` subclass for anything we cannot or will not decode.
    """
    y, info = decode(data, limits, mono=True)
    y = y[:, 0]
    y -= np.float32(y.mean(dtype=np.float64))  # DC offset would bias energy and c0.
    return resample(y, info.sample_rate)


def frame_db(y: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """RMS level in dBFS of 25 ms frames every 10 ms; shape (n_frames,)."""
    frame, hop = int(FRAME_S * sr), int(FRAME_HOP_S * sr)
    if len(y) < frame:
        y = np.pad(y, (0, frame - len(y)))
    frames = np.lib.stride_tricks.sliding_window_view(y.astype(np.float64), frame)[::hop]
    rms = np.sqrt(np.mean(frames**2, axis=1))
    return 20.0 * np.log10(np.maximum(rms, 1e-10))


def voiced_intervals(y: np.ndarray, sr: int = SAMPLE_RATE) -> list[tuple[int, int]]:
    """Sample ranges [start, end) that hold speech-level energy, padded and merged.

    A frame counts when it is within `VOICED_TOP_DB` of the loudest frame and above
    `SILENCE_FLOOR_DBFS`; gaps under `MIN_GAP_S` are bridged and bursts under `MIN_REGION_S`
    dropped. Silent audio gives an empty list.
    """
    db = frame_db(y, sr)
    active = (db > db.max() - VOICED_TOP_DB) & (db > SILENCE_FLOOR_DBFS)
    hop, frame = int(FRAME_HOP_S * sr), int(FRAME_S * sr)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
    runs = [(s * hop, (e - 1) * hop + frame) for s, e in zip(edges[::2], edges[1::2], strict=True)]
    pad = int(REGION_PAD_S * sr)
    merged = join_close(runs, MIN_GAP_S * sr)
    return [(max(0, s - pad), min(len(y), e + pad)) for s, e in merged if e - s >= MIN_REGION_S * sr]


def join_close(spans: list[tuple[int, int]], gap: float) -> list[tuple[int, int]]:
    """Sorted sample spans joined wherever one starts less than ``gap`` samples after the last ends."""
    joined: list[list[int]] = []
    for start, end in spans:
        if joined and start - joined[-1][1] < gap:
            joined[-1][1] = max(joined[-1][1], end)
        else:
            joined.append([start, end])
    return [(s, e) for s, e in joined]


def trim_silence(y: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """From the first voiced sample to the last; raises `NoSpeechError` for silent audio."""
    regions = voiced_intervals(y, sr)
    if not regions:
        raise NoSpeechError(
            f"no speech found: the audio is silent or below {SILENCE_FLOOR_DBFS:g} dBFS throughout"
        )
    return y[regions[0][0] : regions[-1][1]]


def normalize_loudness(y: np.ndarray, sr: int = SAMPLE_RATE, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """Scale so the voiced frames' RMS is ``target_dbfs``; silent input raises `NoSpeechError`.

    Measured on voiced frames only, so pauses do not make a clip louder; computed in float64,
    so floats far beyond full scale normalise instead of overflowing.
    """
    db = frame_db(y, sr)
    voiced = db[(db > db.max() - VOICED_TOP_DB) & (db > SILENCE_FLOOR_DBFS)]
    if voiced.size == 0:
        raise NoSpeechError(
            f"no speech found: the audio is silent or below {SILENCE_FLOOR_DBFS:g} dBFS throughout"
        )
    level = 10.0 * np.log10(np.mean(10.0 ** (voiced / 10.0)))  # Power mean of the voiced frames.
    gain = 10.0 ** ((target_dbfs - level) / 20.0)
    return (y.astype(np.float64) * gain).astype(np.float32)


def segment(
    regions: list[tuple[int, int]], *, window: int, hop: int, min_length: int = 0
) -> list[tuple[int, int]]:
    """Windows of at most ``window`` samples every ``hop`` samples inside each region.

    A region no longer than ``window`` is one segment; a longer one is covered by windows whose
    last one ends exactly at the region's end, so no speech is left out. Segments shorter than
    ``min_length`` are dropped.
    """
    if window <= 0 or hop <= 0:
        raise ValueError(f"window={window} and hop={hop} must be positive sample counts")
    out: list[tuple[int, int]] = []
    for start, end in regions:
        if end - start <= window:
            spans = [(start, end)]
        else:
            starts = list(range(start, end - window + 1, hop))
            if starts[-1] + window < end:
                starts.append(end - window)
            spans = [(s, s + window) for s in starts]
        out.extend(span for span in spans if span[1] - span[0] >= min_length)
    return out
