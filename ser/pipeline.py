"""The request path shared by training, evaluation, the service and the demo.

decoded mono audio → voiced regions → loudness-normalised → segments → model inputs.
`clip_inputs` is the one place that decides which stretches of a recording the model sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ser.audio import join_close, normalize_loudness, resample, segment, voiced_intervals
from ser.errors import NoSpeechError, SERError
from ser.features import FeatureConfig, clip_features

MIN_SEGMENT_S = 0.25  # Shorter leftovers at a region's end carry too little to classify.
# A pause at least this long (between padded voiced regions) ends an utterance: a clip's windows
# never straddle one. No clip of TESS or of the synthetic corpus has one (tests/test_tess.py and
# tests/test_synthetic.py check), so their inputs are what they were before utterances were split.
UTTERANCE_PAUSE_S = 0.5


@dataclass
class Inputs:
    """Model inputs for one recording: ``x`` (n, *config.input_shape), their spans in samples."""

    x: np.ndarray
    lengths: np.ndarray  # Real frames per input (n,).
    spans: list[tuple[int, int]]
    speech_samples: int  # Samples inside voiced regions.


def _inputs(y: np.ndarray, spans: list[tuple[int, int]], config: FeatureConfig, speech: int) -> Inputs:
    feats = [clip_features(y[s:e], config) for s, e in spans]
    x = np.stack([f for f, _ in feats]).astype(np.float32)
    return Inputs(x, np.array([n for _, n in feats], np.int32), spans, speech)


def _regions(y: np.ndarray, config: FeatureConfig) -> list[tuple[int, int]]:
    regions = voiced_intervals(y, config.sample_rate)
    if not regions:
        raise NoSpeechError("no speech found: the audio is silent or too quiet throughout")
    return regions


def utterances(regions: list[tuple[int, int]], sr: int) -> list[tuple[int, int]]:
    """Voiced regions joined across pauses shorter than `UTTERANCE_PAUSE_S`: the stretches a clip's
    windows stay inside (short pauses belong to the utterance, as in every training clip)."""
    return join_close(regions, UTTERANCE_PAUSE_S * sr)


def clip_inputs(y: np.ndarray, config: FeatureConfig) -> Inputs:
    """Inputs covering each utterance of a clip (its speech, first to last voiced sample, split at
    pauses of `UTTERANCE_PAUSE_S` or more) in windows of ``window_s``.

    An utterance no longer than one window gives one input; longer ones overlap by half a window.
    The caller averages the inputs' probabilities weighted by length. Windows never straddle a long
    pause: a recording whose emotion changes between sentences would otherwise give windows of two
    emotions and the silence between them, which no training clip has.
    """
    regions = _regions(y, config)
    y = normalize_loudness(y, config.sample_rate)
    window = config.window_samples
    spans = segment(utterances(regions, config.sample_rate), window=window, hop=window // 2)
    return _inputs(y, spans, config, sum(e - s for s, e in regions))


def speed_copy(y: np.ndarray, speed: float, sr: int) -> np.ndarray:
    """``y`` played ``speed`` times as fast: pitch, formants and tempo move together, as in another
    voice. Training's speed perturbation and the service's test-time copies are this one function."""
    return resample(y, int(sr * speed), sr)


def clip_copies(y: np.ndarray, config: FeatureConfig, speeds: tuple[float, ...] = ()) -> list[Inputs]:
    """`clip_inputs` of the clip as recorded, then of each speed copy (test-time augmentation).

    A copy that yields no input (too short once sped up) is left out, as `training.evaluate --tta`
    leaves it out; the recording itself raises as `clip_inputs` does.
    """
    copies = [clip_inputs(y, config)]
    for speed in speeds:
        try:
            copies.append(clip_inputs(speed_copy(y, speed, config.sample_rate), config))
        except SERError:
            continue
    return copies


def timeline_inputs(y: np.ndarray, config: FeatureConfig, *, window_s: float, hop_s: float) -> Inputs:
    """Inputs over each voiced region in windows of ``window_s`` every ``hop_s`` seconds."""
    if not 0 < window_s <= config.window_s:
        raise ValueError(f"window_s={window_s} must be in (0, {config.window_s}] seconds")
    if not 0 < hop_s <= window_s:
        raise ValueError(f"hop_s={hop_s} must be in (0, window_s={window_s}] seconds")
    regions = _regions(y, config)
    y = normalize_loudness(y, config.sample_rate)
    sr = config.sample_rate
    spans = segment(
        regions, window=int(window_s * sr), hop=int(hop_s * sr), min_length=int(MIN_SEGMENT_S * sr)
    )
    if not spans:
        raise NoSpeechError(f"no stretch of speech is at least {MIN_SEGMENT_S} s long")
    return _inputs(y, spans, config, sum(e - s for s, e in regions))
