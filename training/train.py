"""Train an emotion model and save it, with its spec and test metrics, to the BentoML model store.

    python -m training.train --data ../shared/data/tess                     # random split, default preset
    python -m training.train --data ../shared/data/tess --split speaker --test-speakers YAF
    python -m training.train --data ../shared/data/tess --preset seed       # the write-ups' network
    python -m training.train --data ../shared/data/tess --ensemble 5        # five seeds, served as one

Prints the saved model's tag and writes a report folder (metrics.json, confusion.png, curves.png).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ser.datasets import DATASETS, Manifest, load_manifest
from ser.features import NormStats
from ser.labels import EMOTIONS
from ser.model import DEFAULT_PRESET, PRESETS, Preset, average_models, build_model, get_preset
from ser.predictor import DEFAULT_MODEL, Predictor, combine_segments
from ser.spec import MODEL_FILE, ModelSpec
from training import batch_augment
from training.data import ClipSet, extract
from training.metrics import classification_metrics, format_metrics
from training.split import Split, make_split

EARLY_STOP_PATIENCE = 12  # Epochs without a better validation accuracy before stopping.


@dataclass
class Trained:
    predictor: Predictor
    history: dict
    metrics: dict | None  # On the test part, per clip; None when there is no test part.
    seconds: float


def _subset(s: ClipSet, clips: np.ndarray) -> ClipSet:
    keep = np.isin(s.clip, clips)
    return ClipSet(s.x[keep], s.lengths[keep], s.y[keep], s.clip[keep], [])


def _joined(sets: list[ClipSet], clips: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs, lengths and labels of ``clips``'s segments across ``sets``, in order."""
    parts = [_subset(s, clips) for s in sets]
    return tuple(np.concatenate([getattr(p, k) for p in parts]) for k in ("x", "lengths", "y"))


def _one_hot(y: np.ndarray) -> np.ndarray:
    return np.eye(len(EMOTIONS), dtype=np.float32)[y]


def clip_probabilities(predictor: Predictor, s: ClipSet) -> dict[int, tuple[int, np.ndarray]]:
    """Clip index → (true label index, probabilities); segments are combined as the service does."""
    probs = predictor.forward(predictor.spec.norm.apply(s.x, s.lengths))
    out = {}
    for clip in np.unique(s.clip):
        rows = s.clip == clip
        out[int(clip)] = (int(s.y[rows][0]), combine_segments(probs[rows], s.lengths[rows]))
    return out


def clip_predictions(predictor: Predictor, s: ClipSet) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) label index per clip."""
    by_clip = clip_probabilities(predictor, s).values()
    return np.array([t for t, _ in by_clip]), np.array([int(np.argmax(p)) for _, p in by_clip])


def evaluate_clips(predictor: Predictor, s: ClipSet) -> dict:
    """Per-clip metrics in the shape of `training.metrics.classification_metrics`."""
    return classification_metrics(*clip_predictions(predictor, s), list(predictor.spec.labels))


def fit(
    preset: Preset,
    features: ClipSet,
    split: Split,
    *,
    augmented: list[ClipSet],
    epochs: int,
    batch_size: int,
    seed: int,
    verbose: int = 2,
) -> Trained:
    """Fit on the split's training clips (+ their augmented copies), select on validation, test."""
    import keras
    import tensorflow as tf

    started = time.time()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    # Augmented sets hold training clips (preset.augment) or validation clips (preset.val_augment).
    x, lengths, y = _joined([features, *augmented], split.train)
    val_x, val_lengths, val_y = _joined([features, *augmented], split.val)
    norm = NormStats.fit(x, lengths, per_step=preset.features.kind == "mean")
    model = build_model(preset)
    with tempfile.TemporaryDirectory() as tmp:
        best = Path(tmp) / "best.keras"
        callbacks = [
            keras.callbacks.ModelCheckpoint(best, monitor=preset.monitor, save_best_only=True),
            keras.callbacks.EarlyStopping(
                monitor=preset.monitor, patience=EARLY_STOP_PATIENCE, restore_best_weights=True
            ),
        ]
        inputs, targets = norm.apply(x, lengths), _one_hot(y)
        if preset.mixup or preset.time_masks:
            kw = {"mixup": preset.mixup, "time_masks": preset.time_masks, "mask_steps": preset.mask_steps}
            data = {"x": batch_augment.batches(inputs, targets, batch_size=batch_size, seed=seed, **kw)}
        else:
            data = {"x": inputs, "y": targets, "batch_size": batch_size, "shuffle": True}
        history = model.fit(
            **data,
            validation_data=(norm.apply(val_x, val_lengths), _one_hot(val_y)),
            epochs=epochs,
            callbacks=callbacks,
            verbose=verbose,
        ).history
        if best.exists():
            model = keras.models.load_model(best, safe_mode=True)
    spec = ModelSpec(labels=EMOTIONS, features=preset.features, norm=norm, preset=preset.name)
    predictor = Predictor(model, spec)
    metrics = evaluate_clips(predictor, _subset(features, split.test)) if len(split.test) else None
    return Trained(predictor, history, metrics, time.time() - started)


def fit_ensemble(n: int, preset: Preset, features: ClipSet, split: Split, *, seed: int, **kwargs) -> Trained:
    """``n`` models fitted as `fit` does with seeds seed … seed+n−1, served as one (`average_models`).

    The members share the split, the inputs and so the normalisation statistics; only the
    weights' initialisation and the batches' order differ. ``history`` is the first member's;
    ``metrics`` are the ensemble's, with each member's test accuracy beside them.
    """
    members = [fit(preset, features, split, seed=seed + k, **kwargs) for k in range(n)]
    if n == 1:
        return members[0]
    model = average_models([m.predictor.model for m in members])
    predictor = Predictor(model, members[0].predictor.spec)
    metrics = evaluate_clips(predictor, _subset(features, split.test)) if len(split.test) else None
    if metrics:
        metrics["member_accuracies"] = [m.metrics["accuracy"] for m in members]
        metrics["member_epochs_run"] = [len(m.history["loss"]) for m in members]
    return Trained(predictor, members[0].history, metrics, sum(m.seconds for m in members))


def prepare(manifest: Manifest, preset: Preset, split: Split, *, workers: int | None = None):
    """Inputs for every clip, plus the augmented copies of training and validation clips the preset asks."""
    features = extract(manifest.entries, preset.features, workers=workers)
    augmented = []
    for part, names in ((split.train, preset.augment), (split.val, preset.val_augment)):
        entries = [manifest.entries[i] for i in part]
        for name in names:
            aug = extract(entries, preset.features, augmentation=name, workers=workers)
            aug.clip = part[aug.clip]  # Back to indices into the whole manifest.
            augmented.append(aug)
    return features, augmented


def save(trained: Trained, name: str, info: dict) -> str:
    """Save model + spec to the BentoML model store; returns the tag.

    Beside ``model.keras`` go its LiteRT export and the mel filterbank (`ser.export`), which the
    service runs without TensorFlow or librosa; the metadata's ``runtime`` says what was written.
    """
    import bentoml

    from ser.export import export_model_files

    spec = trained.predictor.spec
    spec = ModelSpec(spec.labels, spec.features, spec.norm, spec.preset, info)
    with bentoml.models.create(name, metadata=spec.to_metadata(), labels={"preset": spec.preset}) as ref:
        trained.predictor.model.save(ref.path_of(MODEL_FILE))
        ref.info.metadata["runtime"] = export_model_files(trained.predictor.model, spec, Path(ref.path))
    return str(ref.tag)


def write_report(out: Path, trained: Trained, info: dict) -> None:
    from training.plots import confusion_png, curves_png

    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps({**info, "test": trained.metrics}, indent=2))
    curves_png(trained.history, out / "curves.png")
    if trained.metrics:
        confusion_png(trained.metrics, out / "confusion.png")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n")[0])
    p.add_argument(
        "--data", required=True, help="corpus folder (TESS, RAVDESS, CREMA-D, SAVEE, EMO-DB, synthetic)"
    )
    p.add_argument("--dataset", default="auto", choices=DATASETS)
    p.add_argument("--split", default="random", choices=["random", "speaker"])
    p.add_argument("--test-speakers", nargs="+", default=["YAF"], help="with --split speaker")
    p.add_argument("--test-size", type=int, default=400, help="clips held out with --split random")
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=sorted(PRESETS))
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--ensemble",
        type=int,
        default=1,
        help="train N models (seeds seed … seed+N−1) and save their averaged probabilities as one model",
    )
    p.add_argument("--name", default=DEFAULT_MODEL.split(":")[0], help="model name in the BentoML store")
    p.add_argument("--report", type=Path, default=None, help="report folder (default reports/<tag>)")
    p.add_argument("--workers", type=int, default=None, help="feature-extraction processes (default: cores)")
    args = p.parse_args(argv)
    if args.ensemble < 1:
        p.error(f"--ensemble {args.ensemble}: at least 1 model")
    return args


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    manifest = load_manifest(args.data, args.dataset)
    for s in manifest.skipped:
        print(f"{'skipped' if s.fatal else 'note'}: {s.path}: {s.reason}")
    preset = get_preset(args.preset)
    split = make_split(
        manifest.entries,
        mode=args.split,
        test_size=args.test_size,
        test_speakers=args.test_speakers,
        seed=args.seed,
    )
    sizes = f"train {len(split.train)}, validation {len(split.val)}, test {len(split.test)}"
    print(f"{len(manifest)} clips; {sizes}")
    features, augmented = prepare(manifest, preset, split, workers=args.workers)
    for path, reason in features.failed:
        print(f"left out: {path}: {reason}")
    trained = fit_ensemble(
        args.ensemble,
        preset,
        features,
        split,
        augmented=augmented,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    info = {
        "dataset": manifest.entries[0].dataset,
        "manifest_sha": manifest.digest(),
        "n_clips": len(manifest),
        "split": split.description,
        "epochs_run": len(trained.history.get("loss", [])),
        "train_seconds": round(trained.seconds, 1),
        "ensemble": args.ensemble,
        "test_accuracy": trained.metrics["accuracy"] if trained.metrics else None,
        "test_macro_f1": trained.metrics["macro_f1"] if trained.metrics else None,
    }
    tag = save(trained, args.name, info)
    report = args.report or Path("reports") / tag.replace(":", "-")
    write_report(report, trained, info)
    if trained.metrics:
        print(format_metrics(trained.metrics))
    print(f"report: {report}")
    print(f"saved: {tag}")
    return tag


if __name__ == "__main__":
    main()
