"""What each change buys on the speaker-independent TESS protocol (the README's ablation table).

    python -m training.ablation --data ../shared/data/tess                 # every variant (~11 h on 2 cores)
    python -m training.ablation --data ../shared/data/tess --only speed4   # one
    python -m training.ablation --data ../shared/data/tess --only speed4 --seed 1   # another seed

Each variant is the default preset with one or two settings changed; each runs the protocol of
`training.evaluate --protocol speaker` (train on one speaker, test on the other, both ways) with
the same seed and epoch budget, and the table is written to ``--out`` (JSON + Markdown).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from ser.features import FeatureConfig
from ser.model import DEFAULT_PRESET, PRESETS
from training import evaluate

SPEED4 = ("speed_0.8", "speed_0.9", "speed_1.1", "speed_1.25")
# Every row changes the default as it was when the table began: label smoothing, adopted since
# (`speed4_ls01`), is off here, so each variant still reruns its row.
BASE = dataclasses.replace(PRESETS[DEFAULT_PRESET], label_smoothing=0.0)
F0_FEATURES = dataclasses.replace(BASE.features, pitch=True)
LOG_MEL = dataclasses.replace(BASE.features, cepstra=False)
ENS5_TTA = ("--ensemble", "5", "--tta", "speed_0.9", "speed_1.1")  # Five models, copies at 0.9× and 1.1×.
VARIANTS: dict[str, tuple[str, dict]] = {
    "speed_0.9_1.1": ("speed perturbation 0.9×/1.1×", {"augment": ("speed_0.9", "speed_1.1")}),
    "mfcc20_deltas": (
        "20 MFCCs + deltas, speed 0.9×/1.1×",
        {"features": FeatureConfig(n_mfcc=20, deltas=1), "augment": ("speed_0.9", "speed_1.1")},
    ),
    "speed4": ("speed perturbation 0.8×–1.25× (the default before label smoothing)", {"augment": SPEED4}),
    "speed4_val_loss": (
        "speed 0.8×–1.25×, checkpoint on validation loss",
        {"augment": SPEED4, "monitor": "val_loss"},
    ),
    "cmvn_mean": (
        "speed 0.8×–1.25×, per-utterance mean normalisation only (no variance)",
        {"augment": SPEED4, "features": FeatureConfig(cmvn_std=False)},
    ),
    "no_cmvn": (
        "speed 0.8×–1.25×, no per-utterance normalisation (training-set statistics only)",
        {"augment": SPEED4, "features": FeatureConfig(cmvn=False)},
    ),
    "no_cmvn_adapt": (
        "no per-utterance normalisation; test speaker normalised by own statistics (enrolment)",
        {"augment": SPEED4, "features": FeatureConfig(cmvn=False), "args": ("--adapt-norm",)},
    ),
    "speed4_noise": (
        "speed 0.8×–1.25× and noise at 20 dB SNR",
        {"augment": (*SPEED4, "noise_20db")},
    ),
    "pitch4": (
        "pitch shift ±1 and ±2 semitones at the same tempo, no speed perturbation",
        {"augment": ("pitch_-2", "pitch_-1", "pitch_1", "pitch_2")},
    ),
    "speed4_pitch2": (
        "speed 0.8×–1.25× and pitch shift ±2 semitones at the same tempo",
        {"augment": (*SPEED4, "pitch_-2", "pitch_2")},
    ),
    "tempo4": (
        "time stretch 0.8×–1.25× at the same pitch, no speed perturbation",
        {"augment": ("tempo_0.8", "tempo_0.9", "tempo_1.1", "tempo_1.25")},
    ),
    "speed4_dropout05": (
        "speed 0.8×–1.25×, dropout 0.5 instead of 0.3",
        {"augment": SPEED4, "dropout": 0.5},
    ),
    "speed4_units32": (
        "speed 0.8×–1.25×, 32 LSTM units per direction instead of 64",
        {"augment": SPEED4, "units": 32},
    ),
    "speed4_layers2": (
        "speed 0.8×–1.25×, two stacked BiLSTM layers (64 per direction each) instead of one",
        {"augment": SPEED4, "layers": 2},
    ),
    "speed4_layers2_ens5_tta": (
        "as speed4_layers2, five models and test clips also at speed 0.9× and 1.1×, averaged",
        {"augment": SPEED4, "layers": 2, "args": ENS5_TTA},
    ),
    "speed4_units16": (
        "speed 0.8×–1.25×, 16 LSTM units per direction instead of 64",
        {"augment": SPEED4, "units": 16},
    ),
    "speed4_valspeed": (
        "speed 0.8×–1.25×; validation also at speed 0.7× and 1.4× (voices unlike training's)",
        {"augment": SPEED4, "val_augment": ("speed_0.7", "speed_1.4")},
    ),
    "speed4_noise03": (
        "speed 0.8×–1.25×, Gaussian noise (σ 0.3) on the normalised MFCC frames while training",
        {"augment": SPEED4, "input_noise": 0.3},
    ),
    "speed4_chdrop02": (
        "speed 0.8×–1.25×, whole MFCC coefficients dropped (20 %) while training",
        {"augment": SPEED4, "channel_dropout": 0.2},
    ),
    "speed4_tta": (
        "speed 0.8×–1.25×; test clips also at speed 0.9× and 1.1×, averaged (SER_TTA_SPEEDS=0.9,1.1)",
        {"augment": SPEED4, "args": ("--tta", "speed_0.9", "speed_1.1")},
    ),
    "speed4_tta4": (
        "speed 0.8×–1.25×; test clips also at speed 0.8×, 0.9×, 1.1× and 1.25×, averaged (not served)",
        {"augment": SPEED4, "args": ("--tta", *SPEED4)},
    ),
    "speed4_ens5": (
        "speed 0.8×–1.25×; five models (seeds seed … seed+4, the same split), probabilities averaged",
        {"augment": SPEED4, "args": ("--ensemble", "5")},
    ),
    "speed4_ens5_tta": (
        "as speed4_ens5, and test clips also at speed 0.9× and 1.1×, averaged over models and copies",
        {"augment": SPEED4, "args": ENS5_TTA},
    ),
    "speed4_ens10_tta": (
        "as speed4_ens5_tta with ten models (seeds seed … seed+9): does the ensemble's gain go on?",
        {"augment": SPEED4, "args": ("--ensemble", "10", "--tta", "speed_0.9", "speed_1.1")},
    ),
    "speed4_f0": (
        "speed 0.8×–1.25×, + relative log F0 and periodicity per frame (numpy YIN)",
        {"augment": SPEED4, "features": F0_FEATURES},
    ),
    "speed4_f0_ens5_tta": (
        "as speed4_f0, five models and test clips also at speed 0.9× and 1.1×, averaged",
        {
            "augment": SPEED4,
            "features": F0_FEATURES,
            "args": ENS5_TTA,
        },
    ),
    "speed4_pseudo05": (
        "speed 0.8×–1.25×; then the test speaker's surest half, labelled by the model, added and "
        "trained again (adaptation with her unlabelled clips, not the protocol)",
        {"augment": SPEED4, "args": ("--pseudo-labels", "0.5")},
    ),
    "speed4_pseudo05x2": (
        "as speed4_pseudo05, two rounds: the surest half, then all, each labelled by the latest model",
        {"augment": SPEED4, "args": ("--pseudo-labels", "0.5", "--pseudo-rounds", "2")},
    ),
    "speed4_pseudo033x3": (
        "as speed4_pseudo05x2 in three rounds: the surest third, two thirds, then all",
        {"augment": SPEED4, "args": ("--pseudo-labels", "0.3334", "--pseudo-rounds", "3")},
    ),
    "speed4_pseudo05x2_tta": (
        "as speed4_pseudo05x2, and test clips also at speed 0.9× and 1.1×, averaged",
        {
            "augment": SPEED4,
            "args": ("--pseudo-labels", "0.5", "--pseudo-rounds", "2", "--tta", "speed_0.9", "speed_1.1"),
        },
    ),
    "speed4_synth": (
        "speed 0.8×–1.25×, + eight synthetic voices (25 clips per emotion each) in every training run",
        {"augment": SPEED4, "synthetic_voices": 8},
    ),
    "speed4_logmel": (
        "speed 0.8×–1.25×, the 64 log-mel energies per frame instead of 40 MFCCs (the control for "
        "speed4_logmel_conv)",
        {"augment": SPEED4, "features": LOG_MEL},
    ),
    "speed4_logmel_conv": (
        "speed 0.8×–1.25×, log-mel frames through 16 convolutions along frequency (5 bands), "
        "max-pooled over 4 bands, before the BiLSTM",
        {"augment": SPEED4, "features": LOG_MEL, "freq_conv": 16},
    ),
    "speed4_mfcc20": (
        "speed 0.8×–1.25×, 20 MFCCs instead of 40 (a smoother spectral envelope; no deltas)",
        {"augment": SPEED4, "features": dataclasses.replace(BASE.features, n_mfcc=20)},
    ),
    "speed4_ls01": (
        "speed 0.8×–1.25×, label smoothing 0.1",
        {"augment": SPEED4, "label_smoothing": 0.1},
    ),
    "speed4_ls02": (
        "speed 0.8×–1.25×, label smoothing 0.2",
        {"augment": SPEED4, "label_smoothing": 0.2},
    ),
    "speed4_ls01_ens5_tta": (
        "as speed4_ls01, five models and test clips also at 0.9× and 1.1×, averaged "
        "(served: `training.train --ensemble 5` and SER_TTA_SPEEDS=0.9,1.1)",
        {
            "augment": SPEED4,
            "label_smoothing": 0.1,
            "args": ENS5_TTA,
        },
    ),
    "speed4_ls01_mixup02": (
        "as speed4_ls01, and mixup with Beta(0.2, 0.2) on the training batches",
        {"augment": SPEED4, "label_smoothing": 0.1, "mixup": 0.2},
    ),
    "speed4_ls01_tmask": (
        "as speed4_ls01, and two time masks of up to 5 steps (160 ms) per training clip, drawn every epoch",
        {"augment": SPEED4, "label_smoothing": 0.1, "time_masks": 2, "mask_steps": 5},
    ),
    "speed8": (
        "speed perturbation on a finer grid: 0.8×, 0.85×, 0.9×, 0.95×, 1.05×, 1.1×, 1.15×, 1.25×",
        {"augment": tuple(f"speed_{s}" for s in (0.8, 0.85, 0.9, 0.95, 1.05, 1.1, 1.15, 1.25))},
    ),
    "speed6": (
        "speed perturbation 0.7×–1.4×",
        {"augment": ("speed_0.7", "speed_0.8", "speed_0.9", "speed_1.1", "speed_1.25", "speed_1.4")},
    ),
}


def _synthetic_voices(n: int) -> tuple[str, ...]:
    """``evaluate`` arguments adding ``n`` voices of the embedded synthetic corpus to training:
    other speakers, whose emotions differ by the prosody rules of `ser.datasets.synthetic`."""
    if not n:
        return ()
    from ser.datasets import synthetic
    from training.data import cache_root

    voices = tuple(f"SYV{i}" for i in range(n))  # Voices derived from their names (`voice_for`).
    folder = synthetic.generate(cache_root() / f"synthetic-voices{n}", clips_per_class=25, speakers=voices)
    return ("--extra-train", str(folder), "--extra-train-dataset", "synthetic")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m training.ablation", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--only", nargs="+", choices=sorted(VARIANTS), default=None)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0, help="seed of the splits, training and augmentation")
    p.add_argument("--out", type=Path, default=Path("reports/ablation"))
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for name in args.only or VARIANTS:
        label, changes = VARIANTS[name]
        settings = {k: v for k, v in changes.items() if k not in ("args", "synthetic_voices")}
        PRESETS[name] = dataclasses.replace(BASE, name=name, **settings)
        m = evaluate.main(
            [
                "--protocol",
                "speaker",
                "--data",
                args.data,
                "--preset",
                name,
                "--epochs",
                str(args.epochs),
                "--seed",
                str(args.seed),
                "--json",
                str(args.out / f"{name}.json"),
                *changes.get("args", ()),
                *_synthetic_voices(changes.get("synthetic_voices", 0)),
            ]
        )
        rows[name] = {
            "label": label,
            "mean_accuracy": m["mean_accuracy"],
            "runs": {f"{r['train']}→{r['test']}": r["accuracy"] for r in m["runs"]},
            "recall": {k: v["recall"] for k, v in m["per_class"].items()},
        }
    lines = ["| variant | mean | runs | recall per class |", "| --- | --- | --- | --- |"]
    for row in rows.values():
        runs = ", ".join(f"{k} {v:.1%}" for k, v in row["runs"].items())
        recall = ", ".join(f"{k} {v:.2f}" for k, v in row["recall"].items())
        lines.append(f"| {row['label']} | {row['mean_accuracy']:.1%} | {runs} | {recall} |")
    (args.out / "ablation.json").write_text(json.dumps(rows, indent=2))
    (args.out / "ablation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return rows


if __name__ == "__main__":
    main()
