"""Data exploration: what a corpus holds, and which of its files deserve a second look.

    python -m training.report --data ../shared/data/tess                 # → reports/data-tess/
    python -m training.report --data DIR --dataset ravdess --out reports/rav --workers 4

Reads every clip (in parallel), then writes into the output folder:

* ``report.md`` — counts per speaker × emotion, whether the classes are balanced, durations,
  sample rates and formats, the flagged files with their reasons, and the figures below;
* ``summary.json`` — the same numbers for scripts and tests;
* ``counts.png``, ``durations.png`` and ``examples/<emotion>.png`` (waveform + spectrogram);
* ``files.csv`` — every file's measurements (rate, length, peak, level, voiced seconds).

A file is flagged when the loader could not read it, its content does not match its extension,
its name breaks the corpus convention, or it has an unusual sample rate, an outlying length,
clipping or float samples beyond full scale, no voiced region, or NaN/inf samples.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import time
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from ser.audio import load_audio
from ser.datasets import DATASETS, Manifest, detect, load_manifest
from ser.labels import EMOTIONS
from training.data import worker_pool
from training.report_plots import counts_png, durations_png, example_png
from training.report_stats import (
    REPORT_LIMITS,
    FileStats,
    Flags,
    analyze_file,
    duration_bounds,
    flag_files,
    relative,
)

BALANCED_RATIO = 0.8  # Classes are "balanced" when the smallest has at least 80 % of the largest.


def analyze_all(paths: list[str], workers: int | None = None) -> list[FileStats]:
    """`analyze_file` on every path, in order; in-process when one worker is asked for."""
    workers = workers or os.cpu_count() or 1
    progress = {"total": len(paths), "desc": "analysing", "unit": "file"}
    if workers <= 1 or len(paths) < 2:
        return [analyze_file(p) for p in tqdm(paths, **progress)]
    with worker_pool(workers) as pool:
        # Chunks amortise the inter-process round trip: one clip takes only a few milliseconds.
        chunk = max(1, min(32, len(paths) // (4 * workers)))
        return list(tqdm(pool.map(analyze_file, paths, chunksize=chunk), **progress))


def _ordered_labels(manifest: Manifest) -> list[str]:
    present = set(manifest.emotions())
    return [e for e in EMOTIONS if e in present] + sorted(present - set(EMOTIONS))


def count_table(manifest: Manifest) -> dict:
    """Clips per emotion, per speaker and per emotion × speaker (usable manifest rows only)."""
    labels = _ordered_labels(manifest)
    pairs = Counter((e.emotion, e.speaker) for e in manifest.entries)
    speakers = manifest.speakers()
    return {
        "per_label": {lab: sum(pairs[lab, s] for s in speakers) for lab in labels},
        "per_speaker": {s: sum(pairs[lab, s] for lab in labels) for s in speakers},
        "per_label_speaker": {lab: {s: pairs[lab, s] for s in speakers} for lab in labels},
    }


def balance(per_label: dict[str, int]) -> dict:
    """Verdict on the label distribution: smallest and largest class, their ratio, missing classes."""
    if not per_label:
        return {"balanced": False, "min": None, "max": None, "ratio": 0.0, "missing": list(EMOTIONS)}
    low = min(per_label, key=per_label.__getitem__)
    high = max(per_label, key=per_label.__getitem__)
    ratio = per_label[low] / per_label[high]
    missing = [e for e in EMOTIONS if e not in per_label]
    return {
        "balanced": ratio >= BALANCED_RATIO and not missing,
        "min": {"label": low, "count": per_label[low]},
        "max": {"label": high, "count": per_label[high]},
        "ratio": round(ratio, 3),
        "missing": missing,
    }


def _stats_summary(values: list[float]) -> dict:
    if not values:
        return {}
    ordered = sorted(values)
    return {"min": ordered[0], "median": ordered[len(ordered) // 2], "max": ordered[-1]}


def _formats(stats: list[FileStats]) -> list[dict]:
    """Rows of (format, subtype, rate, channels) with their file counts, most common first."""
    keys = Counter((s.format, s.subtype, s.sample_rate, s.channels) for s in stats if not s.error)
    names = ("format", "subtype", "sample_rate", "channels")
    return [{**dict(zip(names, key, strict=True)), "files": n} for key, n in keys.most_common()]


def summarize(root: Path, dataset: str, manifest: Manifest, stats: list[FileStats], flags: Flags) -> dict:
    """The dict written to summary.json (paths relative to ``root``)."""
    readable = [s for s in stats if not s.error]
    durations = [s.duration for s in readable]
    n_files = len({e.path for e in manifest.entries} | {s.path for s in manifest.skipped})
    counts = count_table(manifest)
    return {
        "dataset": dataset,
        "root": str(root),
        "n_files": n_files,  # Every audio file the loader looked at, usable or not.
        "n_usable": len(manifest.entries),  # Rows of the manifest: what training would use.
        **counts,
        "balance": balance(counts["per_label"]),
        "durations": _stats_summary(durations),
        "duration_bounds": list(duration_bounds(durations)) if durations else [],
        "rms_dbfs": _stats_summary([s.rms_dbfs for s in readable]),
        "voiced_seconds": _stats_summary([s.voiced for s in readable if s.voiced is not None]),
        "formats": _formats(stats),
        "n_flagged": len(flags.reasons),
        "flagged": [
            {"path": relative(path, root), "reasons": reasons}
            for path, reasons in sorted(flags.reasons.items())
        ],
    }


def write_examples(manifest: Manifest, flags: Flags, out: Path, root: Path) -> dict[str, str]:
    """One figure per emotion from its first unflagged clip; returns emotion → clip (relative path)."""
    (out / "examples").mkdir(parents=True, exist_ok=True)
    chosen: dict[str, str] = {}
    for entry in manifest.entries:
        if entry.emotion in chosen or entry.path in flags.reasons:
            continue
        y = load_audio(entry.path, REPORT_LIMITS)
        name = relative(entry.path, root)
        example_png(
            y, f"{entry.emotion} — {entry.speaker} — {name}", out / "examples" / f"{entry.emotion}.png"
        )
        chosen[entry.emotion] = name
    return chosen


def write_csv(stats: list[FileStats], root: Path, path: Path) -> None:
    names = [f.name for f in dataclasses.fields(FileStats)]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=names)
        writer.writeheader()
        for s in stats:
            writer.writerow({**dataclasses.asdict(s), "path": relative(s.path, root)})


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")  # Keep markdown table rows intact.


def _counts_md(summary: dict) -> list[str]:
    labels, table = list(summary["per_label"]), summary["per_label_speaker"]
    lines = ["| speaker | " + " | ".join(labels) + " | total |", "|---" * (len(labels) + 2) + "|"]
    for speaker, total in summary["per_speaker"].items():
        lines.append(
            f"| {speaker} | " + " | ".join(str(table[lab][speaker]) for lab in labels) + f" | {total} |"
        )
    per_label = summary["per_label"]
    lines.append(
        "| **total** | " + " | ".join(str(n) for n in per_label.values()) + f" | {summary['n_usable']} |"
    )
    return lines


def _balance_md(b: dict) -> str:
    if b["min"] is None:
        return "**No usable clips.**"
    verdict = "Balanced" if b["balanced"] else "Not balanced"
    low, high = b["min"], b["max"]
    if low["count"] == high["count"]:
        text = f"**{verdict}**: every class has {low['count']} clips (min = max = {low['count']})."
    else:
        text = (
            f"**{verdict}**: min {low['count']} clips ({low['label']}), "
            f"max {high['count']} ({high['label']}), "
            f"ratio {b['ratio']:.2f} (balanced: ≥ {BALANCED_RATIO})."
        )
    return text + (f" Missing classes: {', '.join(b['missing'])}." if b["missing"] else "")


def _durations_md(summary: dict) -> list[str]:
    d, bounds = summary["durations"], summary["duration_bounds"]
    if not d:
        return ["No readable clips."]
    lines = [
        f"- length: min {d['min']:.2f} s, median {d['median']:.2f} s, max {d['max']:.2f} s",
        f"- flagged as too short below {bounds[0]:.2f} s, too long above {bounds[1]:.2f} s "
        "(corpus quartiles ± 3·IQR, within 0.5–10 s)",
    ]
    for key, name, unit in (("rms_dbfs", "RMS level", "dBFS"), ("voiced_seconds", "voiced audio", "s")):
        if s := summary[key]:
            lines.append(f"- {name}: min {s['min']:.1f}, median {s['median']:.1f}, max {s['max']:.1f} {unit}")
    return [*lines, "", "![durations](durations.png)"]


def _formats_md(summary: dict) -> list[str]:
    lines = ["| format | sample type | sample rate (Hz) | channels | files |", "|---|---|---|---|---|"]
    for f in summary["formats"]:
        lines.append(
            f"| {f['format']} | {f['subtype']} | {f['sample_rate']} | {f['channels']} | {f['files']} |"
        )
    return lines


def _flagged_md(summary: dict) -> list[str]:
    if not summary["flagged"]:
        return ["None."]
    lines = ["| file | reasons |", "|---|---|"]
    lines += [f"| `{_cell(f['path'])}` | {_cell('; '.join(f['reasons']))} |" for f in summary["flagged"]]
    return lines


def report_markdown(summary: dict, examples: dict[str, str]) -> str:
    left_out = summary["left_out"]
    lines = [
        f"# Data report: {summary['dataset']}",
        "",
        f"`{summary['root']}`: {summary['n_files']} audio files, {summary['n_usable']} usable clips, "
        f"{summary['n_flagged']} flagged.",
        "",
        "## Clips per speaker and emotion",
        "",
        *_counts_md(summary),
        "",
        _balance_md(summary["balance"]),
        "",
        *[f"- left out by design: {reason} ({n} files)" for reason, n in left_out.items()],
        *([""] if left_out else []),
        "![clips per emotion and speaker](counts.png)",
        "",
        "## Durations and levels",
        "",
        *_durations_md(summary),
        "",
        "## Sample rates and formats",
        "",
        *_formats_md(summary),
        "",
        f"## Flagged files ({summary['n_flagged']})",
        "",
        *_flagged_md(summary),
        "",
        "## One example per emotion (first unflagged clip; 16 kHz mono, as the models hear it)",
        "",
    ]
    for emotion, path in examples.items():
        lines += [f"### {emotion}", "", f"`{path}`", "", f"![{emotion}](examples/{emotion}.png)", ""]
    return "\n".join(lines)


def build_report(
    root: str | Path, dataset: str = "auto", out: Path | None = None, workers: int | None = None
) -> dict:
    """Analyse the corpus at ``root`` and write the report folder; returns the summary dict."""
    root = Path(root)
    dataset = detect(root) if dataset == "auto" else dataset
    out = Path(out) if out is not None else Path("reports") / f"data-{dataset}"
    manifest = load_manifest(root, dataset)
    stats = analyze_all([e.path for e in manifest.entries], workers)
    flags = flag_files(manifest, stats)
    summary = {**summarize(root, dataset, manifest, stats, flags), "left_out": dict(flags.left_out)}
    out.mkdir(parents=True, exist_ok=True)
    readable = [s.duration for s in stats if not s.error]
    counts_png(summary["per_label_speaker"], out / "counts.png")
    if readable:
        durations_png(readable, tuple(summary["duration_bounds"]), out / "durations.png")
    examples = write_examples(manifest, flags, out, root)
    summary["examples"] = examples
    write_csv(stats, root, out / "files.csv")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "report.md").write_text(report_markdown(summary, examples))
    return summary


def print_summary(summary: dict, out: Path) -> None:
    print(f"{summary['dataset']}: {summary['n_files']} files, {summary['n_usable']} usable clips")
    print("per emotion: " + ", ".join(f"{lab} {n}" for lab, n in summary["per_label"].items()))
    print("per speaker: " + ", ".join(f"{spk} {n}" for spk, n in summary["per_speaker"].items()))
    print(_balance_md(summary["balance"]).replace("**", ""))
    print(f"flagged: {summary['n_flagged']}")
    for f in summary["flagged"]:
        print(f"  {f['path']}: {'; '.join(f['reasons'])}")
    print(f"report: {out}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.report", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, type=Path, help="corpus folder")
    p.add_argument("--dataset", default="auto", choices=DATASETS)
    p.add_argument("--out", type=Path, default=None, help="report folder (default reports/data-<dataset>)")
    p.add_argument("--workers", type=int, default=None, help="processes reading audio (default: cores)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    dataset = detect(args.data) if args.dataset == "auto" else args.dataset
    out = args.out or Path("reports") / f"data-{dataset}"
    started = time.time()
    summary = build_report(args.data, dataset, out, args.workers)
    print_summary(summary, out)
    print(f"took {time.time() - started:.1f} s")
    return summary


if __name__ == "__main__":
    main()
