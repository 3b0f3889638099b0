"""The benchmark's report: bench/report.md and the throughput and latency plots, from results.json."""

from __future__ import annotations

import contextlib
import math
import os
import platform
from importlib import metadata
from pathlib import Path

import numpy as np

LABELS = {
    "batched": "ours, adaptive batching",
    "multipart": "ours, adaptive batching, multipart form",
    "unbatched": "ours, SER_MAX_BATCH_SIZE=1",
    "peer": "seed-style peer",
}


def _servers(cfg: dict) -> tuple[str, ...]:
    """The load-tested configurations in report order (results before the raw body have no multipart)."""
    return tuple(n for n in ("batched", "multipart", "unbatched", "peer") if n in cfg)


PACKAGES = (
    "bentoml",
    "tensorflow-cpu",
    "keras",
    "librosa",
    "numpy",
    "aiohttp",
    "flask",
    "gunicorn",
    "locust",
)


def machine_meta() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(mem, 1),
        "os": platform.platform(),
        "versions": versions,
    }


def clip_meta(clips) -> dict:
    d = np.array([c.duration for c in clips])
    source = "TESS" if any(c.name[:3] in ("OAF", "YAF") for c in clips) else "synthetic corpus"
    return {
        "source": source,
        "n": len(clips),
        "format": "WAV 16-bit",
        "rates": sorted({c.sr for c in clips}),
        "mean_s": round(float(d.mean()), 2),
        "min_s": round(float(d.min()), 2),
        "max_s": round(float(d.max()), 2),
        "durations_s": [round(float(x), 2) for x in d],  # For the ideal queue's service times.
    }


def ratios(res: dict) -> dict:
    cfg = res["configs"]

    def rps(name: str, c: int) -> float:
        return cfg[name]["levels"][str(c)]["ok_rps"]

    levels = [int(c) for c in cfg["batched"]["levels"]]
    c = 32 if 32 in levels else max(levels)
    best_level = max(levels, key=lambda lv: rps("batched", lv))
    best = rps("batched", best_level)
    # The limit the target is measured against: the highest of this run's in-process measurements
    # (at the start, and beside each level in runs since they were added): the strictest ratio.
    beside = {int(k): v for k, v in cfg["batched"].get("inproc_beside", {}).items()}
    limit = max([_ceiling(res["inproc"])["best_clips_per_s"], *beside.values()])
    half = cfg["batched"].get("half_rate", {})
    single = cfg["batched"]["levels"][str(levels[0])]
    n503 = sum(
        int(r["codes"].get("503", 0)) for n in ("batched", "unbatched") for r in cfg[n]["levels"].values()
    )
    open_loop = [half, *cfg["batched"].get("open_loop", {}).values()]
    n503 += sum(int(x.get("codes", {}).get("503", 0)) for x in open_loop)

    def cpu(name: str) -> float:
        per = cfg[name]["levels"][str(c)].get("cpu_ms_per_request", {})
        return sum(v for k, v in per.items() if k != "load generator") or float("nan")

    raw = "multipart" in cfg  # Since ser/raw_upload.py "ours" sends the audio as the body.
    return {
        "c": c,
        "raw": raw,
        "raw_over_multipart": rps("batched", c) / max(rps("multipart", c), 1e-9) if raw else None,
        "cpu_multipart_over_raw": cpu("multipart") / cpu("batched") if raw else None,
        "cpu_peer_over_ours": cpu("peer") / cpu("batched"),
        "cpu_unbatched_over_batched": cpu("unbatched") / cpu("batched"),
        "ours_over_peer": rps("batched", c) / max(rps("peer", c), 1e-9),
        "batched_over_unbatched": rps("batched", c) / max(rps("unbatched", c), 1e-9),
        "batched_over_unbatched_best": best / max(max(rps("unbatched", lv) for lv in levels), 1e-9),
        "best_rps": best,
        "best_level": best_level,
        "inproc_limit": limit,
        "inproc_beside": beside,
        "ours_over_inproc": best / limit,
        "ours_over_inproc_beside": best / beside[best_level] if best_level in beside else None,
        "ours_over_inproc_one": best / res["inproc"]["best_clips_per_s"],
        "half_rate": half.get("rate"),
        "half_p99_ms": half.get("p99_ms"),
        "half_cpu_ms": level_cpu_ms(half),
        "single_ms": single["p50_ms"],
        "single_c": levels[0],
        "n503": n503,
        "durations_s": res["meta"].get("clips", {}).get("durations_s"),
        "clip_cpu_ms": res["inproc"].get("clip_cpu_ms"),
        "best_cpu_ms": level_cpu_ms(cfg["batched"]["levels"][str(best_level)]),
        "single_p99_ms": single["p99_ms"],
        "cores": res["meta"].get("cores") or 2,
    }


def level_cpu_ms(level: dict) -> float:
    """CPU per answered request at one load level: all server processes plus the load generator,
    which shares the cores. NaN when the run did not record it."""
    return sum(level.get("cpu_ms_per_request", {}).values()) or float("nan")


def ideal_ms(r: dict, rate: float, service_ms: float) -> tuple[float, float] | None:
    """(p99, single-request time) of an ideal server at ``rate`` Poisson arrivals/s: one
    first-come-first-served queue for all cores (one server per core), no hand-offs, each request
    needing ``service_ms`` of CPU on average (as measured at that load), shared among the clips by
    their measured CPU or, in older runs, their lengths (`queue_model.clip_times`); its
    single-request time is the median clip's. None when not recorded."""
    from loadtests.queue_model import clip_times, ideal_sojourn_ms, single_ms

    clips = (
        None if math.isnan(service_ms) else clip_times(service_ms, r.get("clip_cpu_ms"), r.get("durations_s"))
    )
    if clips is None:
        return None
    ms = ideal_sojourn_ms(rate, clips, servers=r["cores"])  # As `python -m loadtests.queue_model` does.
    return float(np.percentile(ms, 99)), single_ms(clips)


def _open_loop_table(batched: dict, r: dict) -> list[str]:
    """Our service under Poisson arrivals at each share of its best throughput that was measured."""
    loads = {float(k): v for k, v in batched.get("open_loop", {}).items()}
    if not loads:  # Runs before the lighter loads were added.
        return []
    if batched.get("half_rate"):
        loads[0.5] = batched["half_rate"]
    ideal = {share: ideal_ms(r, x["rate"], level_cpu_ms(x)) for share, x in loads.items()}
    lines = [
        "",
        f"Under Poisson arrivals at shares of the best throughput ({r['best_rps']:.1f} req/s), "
        f"against the single-request p50 of {r['single_ms']:.1f} ms:",
        "",
        "| share | offered /s | answered /s | p50 ms | p95 ms | p99 ms | p99 / single p50 "
        f"| CPU ms / request | cores busy (of {r['cores']}) "
        "| ideal queue p99 ms | its single request ms | ideal p99 / its single |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for share, x in sorted(loads.items()):
        q, cpu = ideal[share], level_cpu_ms(x)
        cells = f"{q[0]:.1f} | {q[1]:.1f} | {q[0] / q[1]:.1f}× |" if q is not None else "– | – | – |"
        lines.append(
            f"| {share:g} | {x['rate']:.1f} | {x['ok_rps']:.1f} | {x['p50_ms']:.0f} | {x['p95_ms']:.0f} | "
            f"{x['p99_ms']:.0f} | {x['p99_ms'] / r['single_ms']:.1f}× | {cpu:.2f} | "
            f"{x['ok_rps'] * cpu / 1000:.2f} | {cells}"
        )
    if any(q is not None for q in ideal.values()):
        shape = (
            "shared among the clips as measured: each clip's own CPU alone in-process (below) plus "
            "one remainder for all"
            if r.get("clip_cpu_ms")
            else "scaled by its clip's length"
        )
        lines += [
            "",
            "The ideal queue (`loadtests/queue_model.py`, a simulation, not a measurement) is a "
            f"first-come-first-served queue for all {r['cores']} cores with no hand-offs, each "
            "request needing the CPU per request measured at that load (server + load generator; "
            "a request costs more at lighter loads: batches are smaller there, and on this machine "
            "a request that follows an idle pause costs more than one that follows another — "
            f"compare the one-client row above, one request at a time), {shape}: the "
            "floor queueing alone sets for this server. It is scale-free: a server twice as fast "
            "at twice the rate is the same queue on half the time scale, so its p99 over its "
            "single-request time (the median clip's) depends on the utilisation and the clips only."
            + (
                " Above 3× at half the best throughput: with the CPU this server spends per request"
                " there, queueing alone already exceeds the target."
                if 0.5 in ideal and ideal[0.5] and ideal[0.5][0] > 3 * ideal[0.5][1]
                else ""
            ),
            *_no_batching_gain(r),
            *_by_cores(r),
        ]
    return lines


def _no_batching_gain(r: dict) -> list[str]:
    """What the target would ask of a server whose requests cost as little at half load as at its
    best: the ideal queue at half the best rate with the best level's CPU per request."""
    if not (r.get("half_rate") and r.get("clip_cpu_ms")) or math.isnan(r["best_cpu_ms"]):
        return []
    p99, single = ideal_ms(r, r["half_rate"], r["best_cpu_ms"])
    costs = np.asarray(r["clip_cpu_ms"])
    longest = int(np.argmax(r["durations_s"]))
    return [
        "",
        f"Had a request at half load cost no more than at the best level "
        f"({r['best_cpu_ms']:.2f} ms at {r['best_level']} clients) — the cores would be "
        f"{r['half_rate'] * r['best_cpu_ms'] / 1000 / r['cores']:.2f} busy at half the best throughput "
        f"and the ideal queue's p99 {p99:.1f} ms, **{p99 / single:.1f}×** its single request "
        f"({single:.1f} ms). With one client, no queueing, p99 is "
        f"{r['single_p99_ms'] / r['single_ms']:.1f}× p50 ({r['single_p99_ms']:.0f} against "
        f"{r['single_ms']:.0f} ms); the longest clip ({r['durations_s'][longest]:g} s, one request "
        f"in {len(costs)}) needs {costs[longest] / np.median(costs):.1f}× the median clip's CPU alone.",
    ]


CORE_COUNTS = (1, 2, 4, 8)  # Machines the ideal queue is shown on, beside this run's.


def _by_cores(r: dict) -> list[str]:
    """The ideal queue's p99 over its single request on other core counts, at the utilisation
    measured at half the best throughput and at 0.5 (a request no dearer there than at the best
    level): how much of the target is this machine's two cores rather than the server."""
    if not (r.get("half_rate") and r.get("clip_cpu_ms")) or math.isnan(r["half_cpu_ms"] + r["best_cpu_ms"]):
        return []
    busy = r["half_rate"] * r["half_cpu_ms"] / 1000 / r["cores"]
    shares = ((busy, r["half_cpu_ms"]), (0.5, r["best_cpu_ms"]))  # (utilisation, CPU per request)

    def ratio(cores: int, u: float, cpu_ms: float) -> float:  # Scale-free: each core u busy.
        p99, single = ideal_ms({**r, "cores": cores}, u * cores * 1000 / cpu_ms, cpu_ms)
        return p99 / single

    counts = sorted({*CORE_COUNTS, r["cores"]})
    rows = [f"| {n}{' (this run)' if n == r['cores'] else ''} | "
            + " | ".join(f"{ratio(n, *share):.1f}×" for share in shares) + " |" for n in counts]  # fmt: skip
    return [
        "",
        "Queueing alone by core count — the ideal queue's p99 over its single request with this run's "
        "clips, one queue for all cores, each core as busy as this run's were at half the best "
        f"throughput ({busy:.2f}, at the CPU per request measured there) or half busy (0.50, at the best "
        "level's CPU per request, as above):",
        "",
        f"| cores | {busy:.2f} busy | 0.50 busy |",
        "| ---: | ---: | ---: |",
        *rows,
    ]


def _ceiling(ip: dict) -> dict:
    """The in-process limit the targets use: all cores at once when measured (older runs: one)."""
    return ip.get("all_cores") or ip


def _targets(r: dict) -> list[tuple[str, str, bool]]:
    yes = r["half_p99_ms"] is not None and r["half_p99_ms"] <= 3 * r["single_ms"]
    ideal = ideal_ms(r, r["half_rate"], r["half_cpu_ms"]) if r["half_rate"] else None
    floor = (
        f"; an ideal queue: {ideal[0]:.0f} ms, {ideal[0] / ideal[1]:.1f}× its own {ideal[1]:.1f} ms"
        if ideal
        else ""
    )
    return [
        (f"≥ 20× the peer at concurrency {r['c']}", f"{r['ours_over_peer']:.1f}×", r["ours_over_peer"] >= 20),
        (
            "≥ 50 % of the in-process limit",
            f"{100 * r['ours_over_inproc']:.0f} %",
            r["ours_over_inproc"] >= 0.5,
        ),
        (
            "p99 at half the max throughput ≤ 3× the single-request latency",
            f"p99 {r['half_p99_ms'] or float('nan'):.0f} ms at {r['half_rate'] or 0:.1f} req/s vs "
            f"3 × {r['single_ms']:.0f} ms (p50 at concurrency {r['single_c']}){floor}",
            yes,
        ),
        ("zero 503s", f"{r['n503']} × 503", r["n503"] == 0),
    ]


def _clip_costs(ip: dict, clips: dict) -> list[str]:
    """Each clip's CPU alone, by length: the shape of the ideal queue's service times."""
    if not ip.get("clip_cpu_ms"):
        return []
    pairs = sorted(zip(clips["durations_s"], ip["clip_cpu_ms"], strict=True))
    per_s = [ms / d for d, ms in pairs]
    return [
        "",
        "CPU per clip alone (a batch of one: decode + features + model; median of 30), by length: "
        + ", ".join(f"{d:g} s {ms:.2f}" for d, ms in pairs)
        + f" ms; per second of audio {min(per_s):.2f}–{max(per_s):.2f} ms (a cost proportional to "
        "length would give one figure; a clip longer than the model's window is more than one input).",
    ]


def _rss(rows: list[dict]) -> str:
    return ", ".join(f"{x['role']} {x['rss_mb']:.0f}" for x in rows) or "–"


def plots(res: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = res["configs"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    styles = {"batched": "o-", "multipart": "d-.", "unbatched": "s--", "peer": "^:"}
    for name in _servers(cfg):
        style = styles[name]
        lv = cfg[name]["levels"]
        xs = sorted(int(c) for c in lv)
        ax.plot(xs, [lv[str(c)]["ok_rps"] for c in xs], style, label=LABELS[name])
    ax.axhline(
        res["inproc"]["best_clips_per_s"],
        color="grey",
        ls="-.",
        label="in-process limit, one process (clips/s)",
    )
    ax.set(
        xscale="log",
        xlabel="concurrent clients",
        ylabel="answered requests / s",
        title="Throughput, /predict",
    )
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "throughput.png", dpi=110)
    plt.close(fig)

    names = _servers(cfg)
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 4), sharey=True)
    for ax, name in zip(axes, names, strict=True):
        lv = cfg[name]["levels"]
        xs = sorted(int(c) for c in lv)
        for q, style in (("p50", "o-"), ("p95", "s--"), ("p99", "^:")):
            ax.plot(xs, [lv[str(c)][f"{q}_ms"] for c in xs], style, label=q)
        ax.set(xscale="log", yscale="log", xlabel="concurrent clients", title=LABELS[name])
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("latency (ms)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=110)
    plt.close(fig)


def write(res: dict, out: Path) -> None:
    plots(res, out)
    (out / "report.md").write_text(markdown(res))


def markdown(res: dict) -> str:
    m, cfg, r, ip = res["meta"], res["configs"], ratios(res), res["inproc"]
    v, cl, md, st = m["versions"], m["clips"], m["model"], m["settings"]
    lines = [
        "# Benchmark: /predict throughput, latency and cold start",
        "",
        f"Measured {m['date']} with `{m['command']}` in {m['elapsed_s']} s.",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB, {m['os']}; load average "
        f"{m['loadavg_start'][0]} at the start, {m['loadavg_end'][0]} at the end (the machine is shared: "
        "compare rows of this run, not runs).",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        f"Model: `{md['tag']}` (preset `{md['preset']}`, input {tuple(md['input_shape'])}, {md['source']}), "
        f"served on the `{ip.get('runtime', '?')}` runtime.",
        f"Requests: {cl['n']} {cl['source']} clips as {cl['format']} at "
        f"{', '.join(map(str, cl['rates']))} Hz, {cl['min_s']}–{cl['max_s']} s (mean {cl['mean_s']} s), "
        "one per request.",
        f"Each level: {st['warmup_s']:g} s warm-up, then {st['duration_s']:g} s measured.",
        "",
        "## Targets (reported, not asserted)",
        "",
        "| target | measured | met |",
        "| --- | --- | --- |",
        *(f"| {t} | {val} | {'yes' if ok else '**no**'} |" for t, val, ok in _targets(r)),
        "",
        "## Ratios",
        "",
        f"- ours / peer at concurrency {r['c']}: **{r['ours_over_peer']:.1f}×**",
        *(
            [
                f"- audio as the body / multipart form, same server, at concurrency {r['c']}: "
                f"**{r['raw_over_multipart']:.2f}×** (CPU per request, multipart / body: "
                f"{r['cpu_multipart_over_raw']:.2f}×)"
            ]
            if r["raw"]
            else []
        ),
        f"- batched / unbatched at concurrency {r['c']}: **{r['batched_over_unbatched']:.2f}×** "
        f"(best level against best level: {r['batched_over_unbatched_best']:.2f}×)",
        f"- CPU per request at concurrency {r['c']}: peer / ours **{r['cpu_peer_over_ours']:.1f}×**, "
        f"unbatched / batched **{r['cpu_unbatched_over_batched']:.2f}×**",
        f"- ours (best level, {r['best_rps']:.1f} req/s) / in-process limit on all cores "
        f"({r['inproc_limit']:.1f} clips/s, the highest measured in this run): "
        f"**{100 * r['ours_over_inproc']:.0f} %**"
        + (
            f"; against the limit measured right after that level ({r['inproc_beside'][r['best_level']]:.1f} "
            f"clips/s): {100 * r['ours_over_inproc_beside']:.0f} %"
            if r["ours_over_inproc_beside"]
            else ""
        )
        + f" (against one core's {ip['best_clips_per_s']:.1f} clips/s at the start: "
        f"{100 * r['ours_over_inproc_one']:.0f} %)",
        "",
        "## Throughput and latency (closed loop, /predict)",
        "",
        "![throughput](throughput.png)",
        "![latency](latency.png)",
        "",
        "| server | clients | req/s | p50 ms | p95 ms | p99 ms | errors | mean batch "
        "| CPU ms / request (server + load generator) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in _servers(cfg):
        for c, x in sorted(cfg[name]["levels"].items(), key=lambda kv: int(kv[0])):
            err = x["errors"] if not x["errors"] else f"{x['errors']} ({x['codes']})"
            mb = f"{x['mean_batch']:.2f}" if x.get("mean_batch") else "–"
            mb = "off" if name == "unbatched" and not x.get("mean_batch") else mb
            cpu = "–" if math.isnan(level_cpu_ms(x)) else f"{level_cpu_ms(x):.2f}"
            lines.append(
                f"| {LABELS[name]} | {c} | {x['ok_rps']:.1f} | {x['p50_ms']:.0f} | {x['p95_ms']:.0f} | "
                f"{x['p99_ms']:.0f} | {err} | {mb} | {cpu} |"
            )
    h = cfg["batched"].get("half_rate")
    table = _open_loop_table(cfg["batched"], r)  # With the half-load row; older runs: the sentence.
    if table:
        lines += table
    elif h:
        lines += [
            "",
            f"Open loop (Poisson arrivals) at half the best throughput, {h['rate']:.1f}/s: "
            f"{h['ok_rps']:.1f} answered/s, p50 {h['p50_ms']:.0f} ms, p95 {h['p95_ms']:.0f} ms, "
            f"p99 {h['p99_ms']:.0f} ms, errors {h['errors']}, dropped {h['dropped']}.",
        ]
    lines += ["", f"## CPU per request at concurrency {r['c']} (ms, per process, from psutil)", ""]
    lines += [
        "| server | by process | server total | load generator | CPU-bound ceiling |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name in _servers(cfg):
        cpu = dict(cfg[name]["levels"][str(r["c"])].get("cpu_ms_per_request", {}))
        gen = cpu.pop("load generator", float("nan"))
        parts = ", ".join(f"{k} {val:.1f}" for k, val in cpu.items() if val >= 0.05)
        total = sum(cpu.values())
        ceiling = 1000 * m["cores"] / (total + gen)
        lines.append(f"| {LABELS[name]} | {parts} | {total:.1f} | {gen:.1f} | {ceiling:.0f} req/s |")

    def workers(name: str) -> float:
        return cfg[name]["levels"][str(r["c"])].get("cpu_ms_per_request", {}).get("worker ser", float("nan"))

    prep, model = 1000 / ip["prep_clips_per_s"], 1000 / ip["forward_inputs_per_s_b64"]
    multipart = (
        f"; sent as multipart forms, which BentoML's route parses into a temporary file and validates, "
        f"{workers('multipart'):.1f} ms"
        if r["raw"]
        else " (multipart forms, parsed into a temporary file)"
    )
    lines += [
        "",
        f"Where our CPU goes (batched, concurrency {r['c']}): the server's workers (HTTP, decode, "
        f"features, the batched model) {workers('batched'):.1f} ms per request{multipart}; against "
        f"{prep:.1f} ms for decode + features and {model:.2f} ms for the model (batch 64) per clip "
        "in-process. The rest is per-request HTTP work.",
    ]
    lines += [
        "",
        "CPU per request is steadier than throughput when other jobs share the machine (not immune: a "
        "busy neighbour on the same physical core slows every instruction); the ceiling is what all cores "
        "would answer if the server and the load generator had them to themselves "
        "(cores × 1000 / (server + load generator ms)).",
    ]
    lines += [
        "",
        f"## In-process limit (no HTTP, one thread per process; best of {ip.get('rounds', 1)} rounds)",
        "",
        f"| batch | clips/s, one process | clips/s, {_ceiling(ip).get('processes', 1)} processes at once |",
        "| ---: | ---: | ---: |",
        *(
            f"| {b} | {val:.1f} | {_ceiling(ip)['clips_per_s'].get(b, float('nan')):.1f} |"
            for b, val in ip["clips_per_s"].items()
        ),
        "",
        f"Decode + features alone: {ip['prep_clips_per_s']:.0f} clips/s; the model alone at batch 64: "
        f"{ip['forward_inputs_per_s_b64']:.0f} inputs/s.",
        *_clip_costs(ip, cl),
        *(
            [
                "",
                "Measured again right after each load level (all cores, batch 64, one round): "
                + ", ".join(f"after {c} clients {v:.1f}" for c, v in r["inproc_beside"].items())
                + " clips/s. The target uses the highest of all these, so that a slow moment during "
                "the in-process runs cannot flatter the ratio.",
            ]
            if r["inproc_beside"]
            else []
        ),
        *(
            [
                "",
                f"With test-time copies at speeds {', '.join(f'{v:g}' for v in ip['tta_speeds'])} "
                f"(`SER_TTA_SPEEDS`), batch 64, one process: {ip['tta_clips_per_s_b64']:.1f} clips/s, "
                f"{ip['clips_per_s']['64'] / ip['tta_clips_per_s_b64']:.2f}× the work per clip of the "
                "clip alone.",
            ]
            if "tta_clips_per_s_b64" in ip and "64" in ip["clips_per_s"]
            else []
        ),
        "",
        "## Cold start and memory",
        "",
        "| what | process start → first answered /predict | RSS per process (MB), after the load |",
        "| --- | ---: | --- |",
    ]
    for name, what in (
        ("batched", "`python -m ser.prefork <bento>` (the image's command)"),
        ("unbatched", "`python -m ser.prefork <bento>`, unbatched"),
        ("bentoml_serve", "`bentoml serve <bento>` (RSS when ready)"),
        ("peer", "peer: gunicorn, 2 workers"),
    ):
        if name not in cfg:  # Results from before the prefork server.
            continue
        rss = cfg[name].get("rss_loaded") or cfg[name]["rss_ready"]
        lines.append(f"| {what} | {cfg[name]['cold_start_s']:.1f} s | {_rss(rss)} |")
    ct = res["container"]
    if "skipped" in ct:
        lines.append(f"| container `{ct['image']}` | skipped: {ct['skipped']} | |")
    else:
        lines.append(
            f"| container `{ct['image']}` ({ct['engine']} run; image {ct['size_gb']:.2f} GB) | "
            f"{ct['cold_start_s']:.1f} s | {_rss(ct['rss'])} (idle) |"
        )
    lines += ["", NOTES]
    return "\n".join(lines) + "\n"


NOTES = """## How it is measured

- One command, one machine, one run: all three servers are up at once (idle ones cost nothing) and
  take turns at each level, so drift in what else the machine runs hits every configuration alike.
  The load generator (`loadtests/loadgen.py`, asyncio + aiohttp, its own process) shares the cores with
  the server, as would any load generator on this machine; quote ratios, not absolute numbers.
- "Ours" posts each clip as the request body (`Content-Type: audio/wav`, ser/raw_upload.py), as a
  client that has the audio in hand would; the "multipart form" rows send the same clips to the same
  server as a browser form would (BentoML's own route). The peer takes multipart forms, as the
  write-ups' Flask app does.
- Closed loop: N clients each send the next request when the last is answered. Latency is per request,
  client side; percentiles are exact (numpy over every request that ended inside the measured window).
- Mean batch = the delta of `bentoml_service_adaptive_batch_size_sum / _count` (method `infer`) in
  `/metrics` across the level, warm-up included. Batching off is `SER_MAX_BATCH_SIZE=1`, which the
  service turns into `batchable=False` (no dispatcher, no batch metrics): BentoML refuses
  `max_batch_size=1` outright (a ValueError at import).
- CPU per request: the CPU time (user + system) each process of the server's tree used during the
  level (warm-up included) over the requests answered in it; the load generator's own CPU beside it.
- The in-process limit runs `load_audio` + `predict_many` on the same encoded clips in one thread,
  on the service's model runtime (`ser.runtime.load`, one thread, as in the service): once alone,
  then as one process per core all at once, as the service runs one worker per core. The second,
  summed over the processes, is the machine's ceiling. It is measured again (batch 64, one round)
  right after each load level, since a shared machine's speed drifts over a run; the target is
  measured against the highest of these.
- Our servers run as the image does: `python -m ser.prefork <bento>` (gunicorn forking uvicorn
  workers of the BentoML app from one process that imported the service), `SER_DEMO=0` (the slim
  image has no Gradio), so `SER_WORKERS` takes its default, one worker process per usable CPU.
- The peer (`loadtests/peer_app.py`) does what the write-ups' Flask app does per request: save the
  upload, `librosa.load(path, duration=3, offset=0.5)`, the mean of 40 MFCCs, `model.predict` on one
  clip of the seed network (untrained: speed only); gunicorn, 2 sync workers, warmed before measuring.
- Cold start: from process start (`python -m ser.prefork` and `bentoml serve` of the built bento;
  `podman run` of the image) to the first `/predict` answered 200, polling every 0.1 s.
"""


if __name__ == "__main__":  # Rewrite the report from a results.json: python -m loadtests.bench_report bench
    import json
    import sys

    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "bench")
    write(json.loads((folder / "results.json").read_text()), folder)
