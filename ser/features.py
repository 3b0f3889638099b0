"""Audio → MFCC frame sequences, the model's input, and their normalisation statistics.

The MFCC is computed in numpy (rfft of Hann-windowed frames, librosa's Slaney mel filterbank,
power-to-dB with an 80 dB floor, orthonormal DCT-II as a matrix) rather than with
`librosa.feature.mfcc`: it agrees with librosa to within float32 rounding (a test checks) and
needs no numba JIT, whose first call costs ~27 s in a fresh process — a cold start we refuse.
Training stores librosa's filterbank matrix with the model; serving registers it
(`register_mel_filterbank`) and so needs no librosa at all, nor scipy unless the model uses
deltas (`scipy.signal`, imported then). numpy's FFT, not scipy's: importing `scipy.fft` took
0.24 s of each worker's cold start in the image (it imports scipy.special and its array-API
layer), and numpy's float64 rfft is only a little slower per clip (timed once when switching:
+0.07 ms per 2 s clip; numpy's float32 FFT is several times slower than either, so frames go
through float64).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from functools import lru_cache

import numpy as np

from ser.audio import SAMPLE_RATE

TOP_DB = 80.0  # Dynamic range kept by power-to-dB, as librosa's default.
AMIN = 1e-10  # Power floor before the log, as librosa's default.
DELTA_WIDTH = 9  # Frames in the Savitzky-Golay window for deltas, as librosa's default.


@dataclass(frozen=True)
class FeatureConfig:
    """Every setting that turns audio into model input; stored with each trained model.

    ``kind="frames"``: (max_frames, n_features) sequences, zero-padded, for the LSTM presets.
    ``kind="mean"``: the write-ups' feature, the mean of ``n_mfcc`` MFCCs over time, as a
    (n_mfcc, 1) sequence.
    """

    sample_rate: int = SAMPLE_RATE
    n_fft: int = 512  # 32 ms
    win_length: int = 512
    hop_length: int = 256  # 16 ms
    n_mels: int = 64
    n_mfcc: int = 40
    fmin: float = 50.0
    fmax: float = 8000.0
    window_s: float = 3.0  # Longest stretch one model input covers; longer audio is segmented.
    deltas: int = 0  # 0: MFCC only; 1: + delta; 2: + delta-delta.
    stack: int = 2  # Consecutive frames concatenated into one step: halves the LSTM's sequence.
    cmvn: bool = True  # Per-utterance mean normalisation of each coefficient ...
    cmvn_std: bool = True  # ... and variance normalisation (False keeps each utterance's dynamics).
    pitch: bool = False  # + 2 per frame: log2 F0 about the clip's voiced mean (octaves), periodicity.
    # False: the n_mels log-mel energies instead of the MFCCs, for a model that convolves along
    # frequency (the DCT of MFCCs scatters a shift in frequency over every coefficient). Measured
    # speaker-independently on TESS, with or without that convolution: 9–11 points below MFCCs.
    cepstra: bool = True
    kind: str = "frames"

    def __post_init__(self) -> None:
        if self.kind not in ("frames", "mean"):
            raise ValueError(f"FeatureConfig kind={self.kind!r}; allowed: 'frames', 'mean'")
        if self.deltas not in (0, 1, 2):
            raise ValueError(f"FeatureConfig deltas={self.deltas}; allowed: 0, 1, 2")
        if self.kind == "mean" and (self.cmvn or self.deltas or self.stack != 1 or self.pitch):
            raise ValueError("FeatureConfig kind='mean' takes no cmvn, deltas, pitch or stacking")
        if self.stack < 1:
            raise ValueError(f"FeatureConfig stack={self.stack} must be at least 1")
        if self.kind == "mean" and not self.cepstra:
            raise ValueError("FeatureConfig kind='mean' is the mean of MFCCs: cepstra must be True")
        if not 0 < self.n_mfcc <= self.n_mels:
            raise ValueError(f"FeatureConfig n_mfcc={self.n_mfcc} must be in 1..n_mels={self.n_mels}")

    @property
    def window_samples(self) -> int:
        return round(self.window_s * self.sample_rate)  # 48000 at 3 s

    @property
    def max_frames(self) -> int:
        """Steps in one model input: 94 at 3 s, hop 256, stack 2 (188 MFCC frames)."""
        return -(-(1 + self.window_samples // self.hop_length) // self.stack)

    @property
    def n_features(self) -> int:
        return (self.n_bands * (1 + self.deltas) + 2 * self.pitch) * self.stack

    @property
    def n_bands(self) -> int:
        """Values per frame before deltas and pitch: MFCCs, or log-mel energies if not cepstra."""
        return self.n_mfcc if self.cepstra else self.n_mels

    @property
    def input_shape(self) -> tuple[int, int]:
        """Shape of one model input, without the batch axis."""
        return (self.n_mfcc, 1) if self.kind == "mean" else (self.max_frames, self.n_features)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FeatureConfig:
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown feature settings {sorted(unknown)}; known: {sorted(names)}")
        return cls(**data)


# Filterbanks stored with a model (MEL_FILE, computed by librosa at training time), by settings.
_REGISTERED_MEL: dict[tuple, np.ndarray] = {}


def _mel_key(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> tuple:
    return (int(sample_rate), int(n_fft), int(n_mels), float(fmin), float(fmax))


def register_mel_filterbank(config: FeatureConfig, matrix: np.ndarray) -> None:
    """Use ``matrix`` as the mel filterbank for ``config``'s settings: serving then needs no librosa."""
    key = _mel_key(config.sample_rate, config.n_fft, config.n_mels, config.fmin, config.fmax)
    matrix = np.asarray(matrix, np.float32)
    if matrix.shape != (config.n_mels, 1 + config.n_fft // 2):
        raise ValueError(
            f"mel filterbank of shape {matrix.shape}; expected ({config.n_mels}, {1 + config.n_fft // 2})"
        )
    _REGISTERED_MEL[key] = matrix


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """librosa's Slaney-normalised mel filterbank, shape (n_mels, 1 + n_fft // 2).

    A matrix registered with `register_mel_filterbank` (the one stored with the model) if there is
    one for these settings, else computed by librosa once.
    """
    key = _mel_key(sample_rate, n_fft, n_mels, fmin, fmax)
    registered = _REGISTERED_MEL.get(key)
    return registered if registered is not None else _librosa_mel(*key)


@lru_cache(maxsize=8)
def _librosa_mel(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    import librosa.filters  # The filterbank is plain numpy; importing it JIT-compiles nothing.

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).astype(
        np.float32
    )


@lru_cache(maxsize=8)
def _window(win_length: int, n_fft: int) -> np.ndarray:
    w = np.hanning(win_length + 1)[:-1]  # Periodic Hann: scipy.signal.get_window("hann", win_length).
    left = (n_fft - win_length) // 2
    return np.pad(w, (left, n_fft - win_length - left)).astype(np.float32)


def mfcc(y: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """MFCCs of mono audio at ``config.sample_rate``: shape (n_frames, n_mfcc), float32.

    n_frames = 1 + len(y) // hop_length (frames are centred, the signal zero-padded by n_fft/2),
    matching `librosa.feature.mfcc(..., center=True)` transposed.
    """
    return (log_mel(y, config) @ dct_matrix(config.n_mels, config.n_mfcc)).astype(np.float32, copy=False)


def log_mel(y: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Log-mel energies in dB, floored ``TOP_DB`` below the clip's peak: (n_frames, n_mels), float32."""
    half = config.n_fft // 2
    padded = np.pad(y.astype(np.float32, copy=False), (half, half))
    frames = np.lib.stride_tricks.sliding_window_view(padded, config.n_fft)[:: config.hop_length]
    windowed = (frames * _window(config.win_length, config.n_fft)).astype(np.float64)
    spectrum = np.fft.rfft(windowed, axis=-1)  # float64: see the module's docstring.
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    mel = power @ mel_filterbank(config.sample_rate, config.n_fft, config.n_mels, config.fmin, config.fmax).T
    db = 10.0 * np.log10(np.maximum(mel, AMIN))
    return np.maximum(db, db.max() - TOP_DB)


@lru_cache(maxsize=8)
def dct_matrix(n_mels: int, n_mfcc: int) -> np.ndarray:
    """(n_mels, n_mfcc): x @ it is `scipy.fft.dct(x, type=2, norm="ortho")[..., :n_mfcc]`."""
    n, k = np.arange(n_mels), np.arange(n_mfcc)[:, None]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_mels)) * np.sqrt(2 / n_mels)
    basis[0] /= np.sqrt(2)
    return np.ascontiguousarray(basis.T, dtype=np.float32)


def warm_up(config: FeatureConfig) -> None:
    """Import and cache everything `frame_features` needs, so the first request pays none of it."""
    frame_features(np.zeros(config.n_fft * 4, np.float32) + 1e-3, config)


def frame_features(y: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """MFCCs or log-mel energies (+ deltas), per-utterance normalised if configured:
    shape (n_frames, n_features / stack)."""
    m = mfcc(y, config) if config.cepstra else log_mel(y, config)
    parts = [m]
    for order in range(1, config.deltas + 1):
        # Same filter as librosa.feature.delta (Savitzky-Golay, width 9, "interp" edges).
        width = min(DELTA_WIDTH, len(m) - (1 - len(m) % 2))  # Odd and no longer than the clip.
        if width >= 3:
            import scipy.signal

            parts.append(scipy.signal.savgol_filter(m, width, order, deriv=order, axis=0, mode="interp"))
        else:
            parts.append(np.zeros_like(m))
    x = np.concatenate(parts, axis=1).astype(np.float32)
    if config.cmvn:
        x = x - x.mean(axis=0)
        if config.cmvn_std:
            x = x / (x.std(axis=0) + 1e-5)
    if config.pitch:  # After the normalisation: the contour keeps its range in octaves.
        x = np.concatenate([x, pitch_features(y, config)], axis=1)
    return x


PITCH_FMIN, PITCH_FMAX = 60.0, 500.0  # Hz: the F0 range searched (speech, both sexes).
PITCH_FRAME = 1024  # Samples per YIN frame at 16 kHz (64 ms): two periods of PITCH_FMIN and more.
YIN_THRESHOLD = 0.15  # First dip of the normalised difference below this is the period.
VOICED_BELOW = 0.3  # A frame whose best dip stays above this counts as unvoiced.


def pitch_features(y: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """(n_frames, 2), on MFCC's frame grid: log2 F0 minus the clip's mean over voiced frames
    (0 where unvoiced) and periodicity (1 − the YIN dip: near 1 for a clean voiced frame).

    YIN (de Cheveigné & Kawahara 2002) in numpy: the difference function from one FFT
    autocorrelation per frame, cumulative-mean normalised, the first dip below `YIN_THRESHOLD`
    followed to its minimum (else the lowest point). Relative log F0 removes the speaker's pitch
    level and keeps the contour and its range, which carry emotion across voices.
    """
    sr, hop = config.sample_rate, config.hop_length
    tau_min, tau_max = int(sr / PITCH_FMAX), int(sr / PITCH_FMIN)
    width = PITCH_FRAME - tau_max  # Samples compared at every lag.
    padded = np.pad(y.astype(np.float64), (PITCH_FRAME // 2, PITCH_FRAME // 2))
    frames = np.lib.stride_tricks.sliding_window_view(padded, PITCH_FRAME)[::hop]  # 1 + len(y) // hop
    n_fft = 2 * PITCH_FRAME
    acf = np.fft.irfft(np.fft.rfft(frames, n_fft) * np.conj(np.fft.rfft(frames[:, :width], n_fft)), n_fft)[
        :, : tau_max + 1
    ]
    energy = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames**2, axis=1)], axis=1)
    lags = np.arange(tau_max + 1)
    diff = energy[:, [width]] + energy[:, lags + width] - energy[:, lags] - 2 * acf
    diff[:, 0] = 0.0
    cumulative = np.cumsum(diff[:, 1:], axis=1)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] * lags[1:] / np.maximum(cumulative, 1e-12)
    search = cmnd[:, tau_min:]
    below = search < YIN_THRESHOLD
    first = np.where(below.any(axis=1), below.argmax(axis=1), search.argmin(axis=1))
    rising = np.diff(search, axis=1, append=np.inf) >= 0  # At or past a local minimum.
    after = np.arange(search.shape[1])[None, :] >= first[:, None]
    tau = (rising & after).argmax(axis=1)
    dip = np.clip(search[np.arange(len(search)), tau], 0.0, 1.0)
    log_f0 = np.log2(sr / (tau + tau_min))
    voiced = (dip < VOICED_BELOW) & (frames.std(axis=1) > 1e-4)
    rel = np.where(voiced, log_f0 - (log_f0[voiced].mean() if voiced.any() else 0.0), 0.0)
    return np.stack([rel, np.where(voiced, 1.0 - dip, 0.0)], axis=1).astype(np.float32)


def clip_features(y: np.ndarray, config: FeatureConfig) -> tuple[np.ndarray, int]:
    """One model input of shape ``config.input_shape`` and its count of real frames.

    ``y`` must be at most ``config.window_samples`` long (segment longer audio first).
    Frame sequences are zero-padded at the end; the model masks frames that are all zero.
    """
    if len(y) > config.window_samples:
        raise ValueError(f"{len(y)} samples given; one input covers at most {config.window_samples}")
    x = frame_features(y, config)
    if config.kind == "mean":  # Every one of the n_mfcc steps is real: `NormStats.apply` must keep all.
        return x[:, : config.n_mfcc].mean(axis=0)[:, None], config.n_mfcc
    if config.stack > 1:  # Pad with the last frame to a multiple of stack, then concatenate.
        x = np.concatenate([x, np.repeat(x[-1:], -len(x) % config.stack, axis=0)])
        x = x.reshape(len(x) // config.stack, -1)
    out = np.zeros(config.input_shape, np.float32)
    out[: len(x)] = x
    return out, len(x)


@dataclass(frozen=True)
class NormStats:
    """Mean and standard deviation over the training set's real frames, per feature.

    ``per_step=True`` keeps them per time step instead: for ``kind="mean"`` inputs, whose 40
    steps are 40 different coefficients (c0 alone spans hundreds of dB-units).
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    per_step: bool = False

    @classmethod
    def fit(cls, x: np.ndarray, lengths: np.ndarray, *, per_step: bool = False) -> NormStats:
        """From inputs (n, T, F) and real-frame counts (n,)."""
        if per_step:
            return cls(tuple(x.mean(axis=(0, 2)).tolist()), tuple((x.std(axis=(0, 2)) + 1e-5).tolist()), True)
        valid = np.concatenate([xi[: int(n)] for xi, n in zip(x, lengths, strict=True)])
        return cls(tuple(valid.mean(axis=0).tolist()), tuple((valid.std(axis=0) + 1e-5).tolist()))

    def apply(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Standardise real frames into a copy; padded frames stay exactly zero."""
        mean, std = np.asarray(self.mean, np.float32), np.asarray(self.std, np.float32)
        if self.per_step:
            return ((x - mean[None, :, None]) / std[None, :, None]).astype(np.float32)
        out = (x - mean) / std
        frame_index = np.arange(x.shape[1])[None, :]
        out[frame_index >= np.asarray(lengths)[:, None]] = 0.0
        return out.astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std), "per_step": self.per_step}

    @classmethod
    def from_dict(cls, data: dict) -> NormStats:
        return cls(tuple(data["mean"]), tuple(data["std"]), bool(data.get("per_step", False)))
