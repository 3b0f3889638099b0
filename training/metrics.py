"""Classification metrics in the shape every report and `--json` file uses."""

from __future__ import annotations

import numpy as np


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, macro-F1 over the classes present in ``y_true``, per-class P/R/F1, confusion matrix."""
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    index = list(range(len(labels)))
    present = sorted(set(np.asarray(y_true).tolist()))
    p, r, f, support = precision_recall_fscore_support(y_true, y_pred, labels=index, zero_division=0)
    return {
        "n": len(y_true),
        "accuracy": float(np.mean(np.asarray(y_true) == np.asarray(y_pred))),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "labels": list(labels),
        "per_class": {
            label: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=index).tolist(),
    }


BIAS_GRID = np.round(np.linspace(-8.0, 8.0, 81), 1)  # Offsets on log probabilities, 0.2 apart.


def bias_ceiling(y_true: np.ndarray, probs: np.ndarray, labels: list[str], rounds: int = 4) -> dict:
    """The best accuracy per-class offsets ``b`` reach when ``argmax(log p + b)`` is scored on the
    very clips ``b`` was chosen on.

    Thresholds, priors and calibration all move decisions this way, so this bounds what any of them
    could buy from these probabilities; it uses the labels it is scored on, so it is a diagnostic,
    never a result. Coordinate ascent over `BIAS_GRID`, class by class, up to ``rounds`` passes
    (a local optimum; offsets change only for a strictly better accuracy, nearest 0 first).
    """
    y_true = np.asarray(y_true)
    logp = np.log(np.clip(probs, 1e-12, 1.0))
    bias = np.zeros(logp.shape[1])
    best = float(np.mean(logp.argmax(axis=1) == y_true))
    grid = sorted(BIAS_GRID, key=abs)
    for _ in range(rounds):
        before = best
        for k in range(len(bias)):
            for offset in grid:
                trial = bias.copy()
                trial[k] = offset
                accuracy = float(np.mean((logp + trial).argmax(axis=1) == y_true))
                if accuracy > best:
                    best, bias = accuracy, trial
        if best == before:
            break
    m = classification_metrics(y_true, (logp + bias).argmax(axis=1), labels)
    return {
        "accuracy": m["accuracy"],
        "offsets": {label: float(b) for label, b in zip(labels, bias, strict=True)},
        "recall": {label: c["recall"] for label, c in m["per_class"].items()},
    }


def format_metrics(m: dict) -> str:
    """A plain-text report: headline, per-class table, confusion matrix (rows: true, columns: predicted)."""
    labels = m["labels"]
    short = [label[:7] for label in labels]
    lines = [f"n={m['n']}  accuracy={m['accuracy']:.4f}  macro-F1={m['macro_f1']:.4f}", ""]
    lines.append(f"{'class':<18}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}")
    for label in labels:
        c = m["per_class"][label]
        lines.append(
            f"{label:<18}{c['precision']:>10.3f}{c['recall']:>10.3f}{c['f1']:>10.3f}{c['support']:>9}"
        )
    lines += ["", "confusion (rows true, columns predicted):", " " * 18 + "".join(f"{s:>8}" for s in short)]
    for label, row in zip(labels, m["confusion_matrix"], strict=True):
        lines.append(f"{label:<18}" + "".join(f"{v:>8}" for v in row))
    return "\n".join(lines)
