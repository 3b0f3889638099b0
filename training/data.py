"""Manifest → model inputs for training: parallel, cached on disk, optionally augmented.

Features go through exactly the serving path (`ser.audio.load_audio` → `ser.pipeline.clip_inputs`),
so a model never trains on features the service would not compute. Each file's inputs are
cached under a key made of the file's bytes, the feature settings and the augmentation, so a
changed file or setting is recomputed and nothing else is.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ser.audio import AudioLimits, load_audio
from ser.datasets.base import Entry
from ser.features import FeatureConfig
from ser.labels import label_index
from ser.pipeline import clip_inputs, speed_copy

# 2: kind="mean" inputs report n_mfcc real steps, not the MFCC frame count.
# 3: clip windows stay inside utterances (`ser.pipeline.utterances`).
CACHE_VERSION = 3


def cache_root() -> Path:
    """Where generated corpora and cached features go: ``SER_CACHE_DIR`` or ~/.cache/ser."""
    return Path(os.environ.get("SER_CACHE_DIR") or Path.home() / ".cache" / "ser")


# Training accepts longer files than the service (the data report flags them); no upload limit.
TRAIN_LIMITS = AudioLimits(max_bytes=1 << 31, max_duration_s=60.0, min_duration_s=0.1)
# Augmentations: speed perturbation (changes pitch, formants and tempo together, like a
# different vocal tract), pitch shift at the same tempo, tempo at the same pitch and additive
# noise. Gain needs none: loudness is normalised.
AUGMENTATIONS: dict[str, dict] = {
    "speed_0.7": {"speed": 0.7},
    "speed_0.8": {"speed": 0.8},
    "speed_0.85": {"speed": 0.85},
    "speed_0.9": {"speed": 0.9},
    "speed_0.95": {"speed": 0.95},
    "speed_1.05": {"speed": 1.05},
    "speed_1.1": {"speed": 1.1},
    "speed_1.15": {"speed": 1.15},
    "speed_1.25": {"speed": 1.25},
    "speed_1.4": {"speed": 1.4},
    "noise_20db": {"snr_db": 20.0},
    # Pitch shift at the same tempo (librosa's phase vocoder + resampling): pitch and formants
    # move, the speaking rate, itself an emotion cue, does not.
    "pitch_-2": {"semitones": -2.0},
    "pitch_-1": {"semitones": -1.0},
    "pitch_1": {"semitones": 1.0},
    "pitch_2": {"semitones": 2.0},
    # Time stretch at the same pitch (librosa's phase vocoder): only the speaking rate moves, the
    # third of what speed perturbation changes at once. Rates above 1 speak faster.
    "tempo_0.8": {"rate": 0.8},
    "tempo_0.9": {"rate": 0.9},
    "tempo_1.1": {"rate": 1.1},
    "tempo_1.25": {"rate": 1.25},
}


@dataclass
class ClipSet:
    """Inputs of many clips, flattened to segments; ``clip`` maps each segment to its clip."""

    x: np.ndarray  # (n_segments, *input_shape)
    lengths: np.ndarray  # (n_segments,)
    y: np.ndarray  # (n_segments,) label index
    clip: np.ndarray  # (n_segments,) index into the entries list
    failed: list[tuple[str, str]]  # (path, reason) of clips that produced no input


def _augment(y: np.ndarray, name: str, seed: int, sr: int) -> np.ndarray:
    params = AUGMENTATIONS[name]
    if "speed" in params:
        return speed_copy(y, params["speed"], sr)
    if "semitones" in params or "rate" in params:
        import librosa  # Training only.

        if "semitones" in params:
            return librosa.effects.pitch_shift(y, sr=sr, n_steps=params["semitones"]).astype(np.float32)
        return librosa.effects.time_stretch(y, rate=params["rate"]).astype(np.float32)
    rng = np.random.default_rng(seed)
    rms = np.sqrt(np.mean(y.astype(np.float64) ** 2))
    noise = rng.standard_normal(len(y)) * rms / 10 ** (params["snr_db"] / 20)
    return (y + noise).astype(np.float32)


def _key(path: str, config: FeatureConfig, augmentation: str) -> str:
    h = hashlib.sha256(Path(path).read_bytes())
    h.update(json.dumps([CACHE_VERSION, config.to_dict(), augmentation], sort_keys=True).encode())
    return h.hexdigest()[:32]


def _extract(job: tuple[str, dict, str, str]) -> tuple[np.ndarray, np.ndarray] | str:
    """Inputs of one file (cached), or the reason it gave none."""
    path, config_dict, augmentation, cache_dir = job
    config = FeatureConfig.from_dict(config_dict)
    cache = Path(cache_dir) / f"{_key(path, config, augmentation)}.npz"
    if cache.exists():
        with np.load(cache) as z:
            return z["x"], z["lengths"]
    try:
        y = load_audio(path, TRAIN_LIMITS)
        if augmentation:
            y = _augment(
                y,
                augmentation,
                seed=int(hashlib.md5(path.encode()).hexdigest()[:8], 16),
                sr=config.sample_rate,
            )
        inputs = clip_inputs(y, config)
    except Exception as e:  # A bad file is reported by name and left out, never fatal.
        return f"{type(e).__name__}: {e}"
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, x=inputs.x, lengths=inputs.lengths)
    tmp.replace(cache)  # Atomic: a crash never leaves a half-written cache entry.
    return inputs.x, inputs.lengths


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """Processes from a fresh forkserver, never forked from the caller: a caller that has
    TensorFlow loaded (evaluation, self-training rounds, a test session) holds its locks in
    threads a fork does not copy, and a forked worker once hung for good in a TF function's
    ``__del__`` during garbage collection."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver"))


def extract(
    entries: list[Entry],
    config: FeatureConfig,
    *,
    augmentation: str = "",
    cache_dir: Path | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> ClipSet:
    """Model inputs for every entry, in parallel over cores, with a progress bar."""
    from tqdm import tqdm

    cache_dir = cache_dir or cache_root() / "features"
    jobs = [(e.path, config.to_dict(), augmentation, str(cache_dir)) for e in entries]
    workers = workers or os.cpu_count() or 1
    desc = f"features{' +' + augmentation if augmentation else ''}"
    if workers == 1:
        results = [_extract(j) for j in tqdm(jobs, desc=desc, disable=not progress)]
    else:
        with worker_pool(workers) as pool:
            results = list(
                tqdm(pool.map(_extract, jobs, chunksize=16), total=len(jobs), desc=desc, disable=not progress)
            )
    xs, lengths, ys, clips, failed = [], [], [], [], []
    for i, (entry, result) in enumerate(zip(entries, results, strict=True)):
        if isinstance(result, str):
            failed.append((entry.path, result))
            continue
        x, n = result
        xs.append(x)
        lengths.append(n)
        ys.append(np.full(len(x), label_index(entry.emotion)))
        clips.append(np.full(len(x), i))
    if not xs:
        raise ValueError(f"no usable clip among {len(entries)} files; first failure: {failed[:1]}")
    return ClipSet(
        np.concatenate(xs), np.concatenate(lengths), np.concatenate(ys), np.concatenate(clips), failed
    )
