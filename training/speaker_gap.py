"""Does each emotion sound alike across speakers? Class centroids compared, no model involved.

    python -m training.speaker_gap --data ../shared/data/tess [--json reports/speaker_gap.json]

Why: trained on one TESS actress, every model we built misses the other's *happy* (0–7 % recall,
README: "Speaker-independent"). This asks whether that is the models' fault or the recordings'. Per
clip, the mean and standard deviation over time of its 40 MFCCs — the default preset's features,
over the model inputs the serving path cuts from it (`ser.pipeline.clip_inputs`), without the
per-clip normalisation that would take the means away. Each speaker's clips are standardised with
her own statistics, which takes away her voice's level and timbre and leaves how her emotions differ
from one another; the centroid of each emotion is then compared (cosine similarity) with the
centroids of all other speakers' clips, standardised the same way. An emotion that both speakers
express alike has its own class as its nearest centroid. Also reported: each clip classified by the
nearest of the other speakers' centroids — what transfers from one voice to another without any
training.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ser.audio import load_audio
from ser.datasets import DATASETS, load_manifest
from ser.errors import SERError
from ser.features import FeatureConfig
from ser.labels import EMOTIONS
from ser.pipeline import clip_inputs
from training.data import worker_pool

# The default preset's MFCC frames, without its per-clip normalisation or frame stacking.
CONFIG = replace(FeatureConfig(), cmvn=False, stack=1)


def clip_summary(path: str, config: FeatureConfig = CONFIG) -> np.ndarray:
    """(2 × n_mfcc,): the mean and standard deviation over time of the MFCCs of the model inputs
    the serving path cuts from the clip (`ser.pipeline.clip_inputs`: its voiced utterances,
    loudness-normalised, in windows), over their real frames."""
    inputs = clip_inputs(load_audio(path), config)
    m = np.concatenate([x[:n] for x, n in zip(inputs.x, inputs.lengths, strict=True)])
    return np.concatenate([m.mean(axis=0), m.std(axis=0)])


def _summary_or_none(path: str) -> np.ndarray | None:
    try:
        return clip_summary(path)
    except SERError:
        return None


def standardise_per_speaker(x: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    """Each speaker's rows z-scored with that speaker's own mean and standard deviation."""
    out = np.empty_like(x, dtype=np.float64)
    for s in np.unique(speakers):
        rows = speakers == s
        out[rows] = (x[rows] - x[rows].mean(axis=0)) / (x[rows].std(axis=0) + 1e-9)
    return out


def centroids(z: np.ndarray, emotions: np.ndarray, labels: list[str]) -> np.ndarray:
    """(len(labels), features): the mean row of each label (NaN for a label with no rows)."""
    missing = np.full(z.shape[1], np.nan)
    return np.stack([z[emotions == e].mean(axis=0) if (emotions == e).any() else missing for e in labels])


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of every row of ``a`` with every row of ``b``."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T


def compare(z: np.ndarray, emotions: np.ndarray, speakers: np.ndarray, labels: list[str]) -> dict:
    """For each speaker: her emotions' centroids against the other speakers' (pooled), and each of
    her clips classified by the nearest of the other speakers' centroids."""
    out = {}
    for s in sorted(np.unique(speakers)):
        mine, rest = speakers == s, speakers != s
        own = centroids(z[mine], emotions[mine], labels)
        other = centroids(z[rest], emotions[rest], labels)
        sim = cosine(own, other)
        guess = np.array(labels)[np.nanargmax(cosine(z[mine], other), axis=1)]
        truth = emotions[mine]
        recall = {e: float((guess[truth == e] == e).mean()) for e in labels if (truth == e).any()}
        out[str(s)] = {
            "similarity": np.round(sim, 4).tolist(),  # Rows: her emotions; columns: the others'.
            "same_class": {e: round(float(sim[i, i]), 4) for i, e in enumerate(labels)},
            "nearest": {e: labels[int(np.nanargmax(sim[i]))] for i, e in enumerate(labels)},
            "nearest_centroid_accuracy": float((guess == truth).mean()),
            "nearest_centroid_recall": recall,
        }
    return out


def render(result: dict) -> str:
    labels = result["labels"]
    lines = []
    for s, r in result["speakers"].items():
        lines.append(f"{s}'s emotions against the other speakers' centroids (cosine similarity):")
        for i, e in enumerate(labels):
            order = np.argsort(r["similarity"][i])[::-1][:3]
            near = ", ".join(f"{labels[j]} {r['similarity'][i][j]:+.2f}" for j in order)
            flag = "" if r["nearest"][e] == e else "   <- nearest is another emotion"
            lines.append(f"  {e:18s} same {r['same_class'][e]:+.2f} | nearest: {near}{flag}")
        recall = ", ".join(f"{e} {v:.2f}" for e, v in r["nearest_centroid_recall"].items())
        accuracy = 100 * r["nearest_centroid_accuracy"]
        lines.append(f"  her clips by the others' nearest centroid: {accuracy:.1f} % ({recall})")
    return "\n".join(lines)


def run(data: str, dataset: str = "auto", workers: int | None = None) -> dict:
    manifest = load_manifest(data, dataset)
    if len(manifest.speakers()) < 2:
        raise SystemExit(f"{data}: {len(manifest.speakers())} speaker(s); the comparison needs at least two")
    paths = [e.path for e in manifest.entries]
    progress = {"total": len(paths), "desc": "summarising", "unit": "clip"}
    workers = workers or os.cpu_count() or 1
    if workers <= 1:
        summaries = [_summary_or_none(p) for p in tqdm(paths, **progress)]
    else:
        with worker_pool(workers) as pool:
            chunk = max(1, min(32, len(paths) // (4 * workers)))
            summaries = list(tqdm(pool.map(_summary_or_none, paths, chunksize=chunk), **progress))
    # A silent or unreadable clip is left out (the data report, training.report, lists them).
    kept = [e for e, r in zip(manifest.entries, summaries, strict=True) if r is not None]
    rows = [r for r in summaries if r is not None]
    emotions = np.array([e.emotion for e in kept])
    speakers = np.array([e.speaker for e in kept])
    labels = [e for e in EMOTIONS if (emotions == e).any()]  # The canonical order.
    z = standardise_per_speaker(np.stack(rows), speakers)
    return {
        "data": str(data),
        "clips": len(kept),
        "labels": labels,
        "features": "mean and std over time of 40 MFCCs of clip_inputs (no per-clip normalisation), "
        "standardised per speaker",
        "speakers": compare(z, emotions, speakers, labels),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m training.speaker_gap", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="corpus folder (two or more speakers)")
    p.add_argument("--dataset", default="auto", choices=DATASETS)
    p.add_argument("--json", type=Path, help="also write the result as JSON here")
    p.add_argument("--workers", type=int, default=None, help="processes (default: one per CPU)")
    args = p.parse_args(argv)
    result = run(args.data, args.dataset, args.workers)
    print(render(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
