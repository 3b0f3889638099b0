"""Evaluate a stored model on any supported corpus, or run the speaker-independent TESS protocol.

    python -m training.evaluate --model ser_lstm:latest --data ../shared/data/tess --speakers YAF
    python -m training.evaluate --protocol speaker --data ../shared/data/tess --json reports/speaker.json

Dataset labels are mapped onto the model's; classes the corpus lacks are named. With
``--protocol speaker`` a model is trained on one speaker and tested on the other, both ways
(nothing is saved to the store); the JSON then also holds ``mean_accuracy`` and ``runs``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from ser.datasets import DATASETS, load_manifest
from ser.datasets.base import Manifest
from ser.features import NormStats
from ser.model import DEFAULT_PRESET, PRESETS, get_preset
from ser.predictor import DEFAULT_MODEL, Predictor
from training.data import AUGMENTATIONS, extract
from training.metrics import bias_ceiling, classification_metrics, format_metrics
from training.split import Split
from training.train import clip_predictions, clip_probabilities, fit, prepare


def evaluate_model(args: argparse.Namespace) -> dict:
    predictor = Predictor.load(args.model)
    manifest = load_manifest(args.data, args.dataset)
    if args.speakers:
        manifest = manifest.filter(speakers=args.speakers)
    if not len(manifest):
        raise SystemExit(f"no clips in {args.data} for speakers {args.speakers}")
    labels = list(predictor.spec.labels)
    unknown = sorted(set(manifest.emotions()) - set(labels))
    if unknown:
        raise SystemExit(f"the corpus has classes the model does not know: {unknown}")
    missing = sorted(set(labels) - set(manifest.emotions()))
    if missing:
        print(f"the corpus lacks these model classes (recall not measured): {', '.join(missing)}")
    features = extract(manifest.entries, predictor.spec.features)
    for path, reason in features.failed:
        print(f"left out: {path}: {reason}")
    metrics = classification_metrics(*clip_predictions(predictor, features), labels)
    metrics.update(model=predictor.tag, dataset=manifest.entries[0].dataset, missing_classes=missing)
    print(f"model {predictor.tag} on {args.data}")
    return metrics


def speaker_protocol(args: argparse.Namespace) -> dict:
    """Train on each speaker alone, test on each other speaker; pooled metrics and the mean."""
    manifest = load_manifest(args.data, args.dataset)
    preset = get_preset(args.preset)
    speakers = manifest.speakers()
    if len(speakers) < 2:
        raise SystemExit(f"--protocol speaker needs at least two speakers; found {speakers}")
    corpus_n = len(manifest)
    if args.extra_train:  # Other voices for every training run; never tested on.
        extra = load_manifest(args.extra_train, args.extra_train_dataset)
        clash = set(extra.speakers()) & set(speakers)
        if clash:
            raise SystemExit(
                f"--extra-train shares speakers {sorted(clash)} with --data: they would be tested on"
            )
        manifest = Manifest(manifest.entries + extra.entries, manifest.skipped + extra.skipped)
    runs, y_true, y_pred = [], [], []
    for train_speaker in speakers:
        split = _speaker_split(manifest.entries[:corpus_n], train_speaker, args.seed)
        if len(manifest) > corpus_n:
            split = dataclasses.replace(
                split, train=np.concatenate([split.train, np.arange(corpus_n, len(manifest))])
            )
        features, augmented = prepare(manifest, preset, split)

        def train(clips, split, augmented=augmented, seed=args.seed):  # The same training for every model.
            return fit(
                preset,
                clips,
                split,
                augmented=augmented,
                epochs=args.epochs,
                batch_size=args.batch_size,
                seed=seed,
            )

        trained = train(features, split)
        test = [s for s in speakers if s != train_speaker]
        predictor, extra, held_out = trained.predictor, {}, _clips(features, split.test)
        if args.adapt_norm:  # Statistics of the test speaker's own clips; their labels are not used.
            norm = NormStats.fit(held_out.x, held_out.lengths, per_step=preset.features.kind == "mean")
            predictor = Predictor(predictor.model, dataclasses.replace(predictor.spec, norm=norm))
            extra["accuracy_without_adaptation"] = trained.metrics["accuracy"]
        if args.pseudo_labels:  # Unlabelled clips of the test speaker, labelled by the model, then retrain.
            predictor, extra["pseudo_label_rounds"] = _self_train(
                train, features, split, predictor, held_out, args.pseudo_labels, args.pseudo_rounds
            )
            extra["accuracy_before_pseudo_labels"] = trained.metrics["accuracy"]
        predictors = [predictor]
        for k in range(1, args.ensemble):  # Same split and data, another seed for weights and order.
            predictors.append(train(features, split, seed=args.seed + k).predictor)
        if args.ensemble > 1:
            members = [clip_predictions(m, held_out) for m in predictors]
            extra["member_accuracies"] = [float(np.mean(t == p)) for t, p in members]
            if args.tta:
                t, p = _averaged_predictions(predictors, held_out, manifest, split.test, [])
                extra["accuracy_ensemble_without_tta"] = float(np.mean(t == p))
        if args.tta or args.ensemble > 1:
            t, p = clip_predictions(predictor, held_out)  # The first model alone, without copies.
            extra["accuracy_without_tta"] = float(np.mean(t == p))
        t, probs = _averaged_probabilities(predictors, held_out, manifest, split.test, args.tta or [])
        p = probs.argmax(axis=1)
        if args.bias_ceiling:
            extra["bias_ceiling"] = bias_ceiling(t, probs, list(predictor.spec.labels))
        y_true.append(t)
        y_pred.append(p)
        m = classification_metrics(t, p, list(predictor.spec.labels))
        runs.append(
            {
                "train": train_speaker,
                "test": "+".join(test),
                "accuracy": m["accuracy"],
                "macro_f1": m["macro_f1"],
                "recall": {k: v["recall"] for k, v in m["per_class"].items()},
                "confusion_matrix": m["confusion_matrix"],  # Rows: true label; columns: predicted.
                "epochs_run": len(trained.history["loss"]),
                "train_seconds": round(trained.seconds, 1),
                **extra,
            }
        )
        print(
            f"train {train_speaker} → test {'+'.join(test)}: accuracy {m['accuracy']:.4f}, "
            f"macro-F1 {m['macro_f1']:.4f}"
        )
    metrics = classification_metrics(
        np.concatenate(y_true), np.concatenate(y_pred), list(trained.predictor.spec.labels)
    )
    metrics.update(
        protocol="speaker",
        preset=preset.name,
        adapt_norm=args.adapt_norm,
        extra_train=str(args.extra_train) if args.extra_train else None,
        tta=args.tta or [],
        ensemble=args.ensemble,
        pseudo_labels=args.pseudo_labels,
        pseudo_rounds=args.pseudo_rounds if args.pseudo_labels else 0,
        runs=runs,
        mean_accuracy=float(np.mean([r["accuracy"] for r in runs])),
    )
    if args.bias_ceiling:
        metrics["mean_bias_ceiling"] = float(np.mean([r["bias_ceiling"]["accuracy"] for r in runs]))
        print(f"with offsets chosen on the test labels (a ceiling): {metrics['mean_bias_ceiling']:.4f}")
    print(f"mean accuracy over {len(runs)} directions: {metrics['mean_accuracy']:.4f}")
    return metrics


def _averaged_predictions(predictors, held_out, manifest, clips: np.ndarray, names: list[str]):
    """(true, predicted) label index per clip, from `_averaged_probabilities`."""
    y_true, probs = _averaged_probabilities(predictors, held_out, manifest, clips, names)
    return y_true, probs.argmax(axis=1)


def _averaged_probabilities(predictors, held_out, manifest, clips: np.ndarray, names: list[str]):
    """(true label per clip, (clips, labels) probabilities): the mean of each clip's probabilities
    over every model and every copy, as recorded and as augmented by each of ``names``.

    Test-time augmentation; the service makes speed copies the same way when SER_TTA_SPEEDS is set
    (`ser.pipeline.clip_copies`). A copy that yields no input (too short once sped up) is left out of
    its clip's mean. Several models (``--ensemble``) are served as one when trained with
    `training.train --ensemble N` (`ser.model.average_models`: the same mean, in the graph).
    """
    entries = [manifest.entries[i] for i in clips]
    sets = [held_out]
    for name in names:
        aug = extract(entries, predictors[0].spec.features, augmentation=name)
        aug.clip = clips[aug.clip]  # Back to indices into the whole manifest.
        sets.append(aug)
    copies = [clip_probabilities(m, s) for m in predictors for s in sets]
    y_true, probs = [], []
    for clip, (label, _) in copies[0].items():
        y_true.append(label)
        probs.append(np.mean([c[clip][1] for c in copies if clip in c], axis=0))
    return np.array(y_true), np.array(probs)


def _self_train(train, features, split, predictor, held_out, fraction: float, n_rounds: int):
    """Rounds of self-training on the test speaker's clips: label the surest with the current
    model (`_pseudo_labels`; the fraction grows by ``fraction`` each round, to at most all), add
    them to the training clips and ``train`` again from scratch. Returns the last model and, per
    round, how many clips were labelled, how many of those labels were right, and the new
    model's accuracy on every test clip (true labels, for the report)."""
    rounds = []
    for r in range(n_rounds):
        share = min(1.0, fraction * (r + 1))
        chosen, label_accuracy = _pseudo_labels(predictor, held_out, share)
        relabelled = dataclasses.replace(features, y=features.y.copy())
        for clip, label in chosen.items():
            relabelled.y[relabelled.clip == clip] = label
        extended = dataclasses.replace(split, train=np.sort(np.concatenate([split.train, list(chosen)])))
        predictor = train(relabelled, extended).predictor
        t, p = clip_predictions(predictor, held_out)
        rounds.append(
            {
                "fraction": share,
                "clips": len(chosen),
                "label_accuracy": label_accuracy,
                "accuracy": float(np.mean(t == p)),
            }
        )
        print(
            f"self-training round {r + 1}: {len(chosen)} clips labelled ({label_accuracy:.3f} right), "
            f"accuracy {rounds[-1]['accuracy']:.4f}"
        )
    return predictor, rounds


def _pseudo_labels(predictor, held_out, fraction: float) -> tuple[dict[int, int], float]:
    """The test clips the model is surest of, with its labels: per predicted class, the most
    confident ``fraction`` of an equal share of the clips (TESS is balanced), so that no class
    takes over. Returns {clip: label} and the accuracy of those labels (for the report only)."""
    by_clip = clip_probabilities(predictor, held_out)
    n_labels = len(predictor.spec.labels)
    share = int(fraction * len(by_clip) / n_labels + 1e-9)
    chosen, right = {}, 0
    for label in range(n_labels):
        mine = [(float(p[label]), clip) for clip, (_, p) in by_clip.items() if int(np.argmax(p)) == label]
        for _, clip in sorted(mine, reverse=True)[:share]:
            chosen[clip] = label
            right += by_clip[clip][0] == label
    return chosen, right / max(len(chosen), 1)


def _speaker_split(entries, train_speaker: str, seed: int) -> Split:
    from training.split import VAL_FRACTION, _stratified

    labels = [e.emotion for e in entries]
    idx = np.arange(len(entries))
    is_train = np.array([e.speaker == train_speaker for e in entries])
    train, val = _stratified(idx[is_train], labels, VAL_FRACTION, seed)
    return Split(
        np.sort(train), np.sort(val), idx[~is_train], {"mode": "speaker", "train_speakers": [train_speaker]}
    )


def _clips(features, clips):
    from training.train import _subset

    return _subset(features, clips)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--dataset", default="auto", choices=DATASETS)
    p.add_argument("--model", default=DEFAULT_MODEL, help="model tag in the BentoML store")
    p.add_argument("--speakers", nargs="+", default=None, help="evaluate on these speakers only")
    p.add_argument("--protocol", choices=["model", "speaker"], default="model")
    p.add_argument(
        "--preset", default=DEFAULT_PRESET, choices=sorted(PRESETS), help="with --protocol speaker"
    )
    p.add_argument("--epochs", type=int, default=50, help="with --protocol speaker")
    p.add_argument("--batch-size", type=int, default=64, help="with --protocol speaker")
    p.add_argument(
        "--adapt-norm",
        action="store_true",
        help="with --protocol speaker: normalise the test speaker's inputs with statistics of their own "
        "(unlabelled) clips, as a deployment that enrols a speaker could",
    )
    p.add_argument(
        "--tta",
        nargs="+",
        default=None,
        choices=sorted(AUGMENTATIONS),
        help="with --protocol speaker: also predict on these augmented copies of each test clip and "
        "average (test-time augmentation; the service's SER_TTA_SPEEDS does it with speed copies)",
    )
    p.add_argument(
        "--pseudo-labels",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="with --protocol speaker: label the test speaker's clips the model is surest of (this fraction "
        "of each class's share) with its own predictions, add them to training and train again; "
        "adaptation with unlabelled audio of the new voice, reported apart from the protocol",
    )
    p.add_argument(
        "--pseudo-rounds",
        type=int,
        default=1,
        help="with --pseudo-labels: rounds of self-training, each labelling with the latest model",
    )
    p.add_argument(
        "--ensemble",
        type=int,
        default=1,
        metavar="N",
        help="with --protocol speaker: train N models (seeds seed … seed+N-1, the same split) and average "
        "their probabilities (with --tta, over every copy too); training.train --ensemble N serves it",
    )
    p.add_argument(
        "--extra-train",
        type=Path,
        default=None,
        metavar="DIR",
        help="with --protocol speaker: a corpus of other speakers added to every training run (not tested)",
    )
    p.add_argument("--extra-train-dataset", default="auto", choices=DATASETS, help="with --extra-train")
    p.add_argument(
        "--bias-ceiling",
        action="store_true",
        help="with --protocol speaker: also report the accuracy that per-class offsets on the log "
        "probabilities reach when chosen on the test speaker's own labels (an upper bound on what any "
        "threshold or calibration can buy; a diagnostic, not a result)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="write the metrics here")
    p.add_argument("--png", type=Path, default=None, help="write the confusion matrix here")
    args = p.parse_args(argv)
    if args.ensemble < 1:
        p.error(f"--ensemble {args.ensemble}: at least 1 model")
    if args.ensemble > 1 and (args.pseudo_labels or args.adapt_norm):
        p.error("--ensemble is measured on its own: not with --pseudo-labels or --adapt-norm")
    metrics = speaker_protocol(args) if args.protocol == "speaker" else evaluate_model(args)
    print(format_metrics(metrics))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(metrics, indent=2))
    if args.png:
        from training.plots import confusion_png

        confusion_png(metrics, args.png)
    return metrics


if __name__ == "__main__":
    main()
