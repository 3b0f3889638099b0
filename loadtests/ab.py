"""A/B of two server settings: the checkout served twice, taking turns under the same load.

    python -m loadtests.ab --model ser_lstm:latest --a SER_LITERT_ENGINE=compiled \\
        --b SER_LITERT_ENGINE=interpreter --levels 8,32 --rounds 3 --json ab.json
    python -m loadtests.ab --b SER_WORKERS=4 --levels 64 --rates 200   # + Poisson arrivals at 200/s

Each side is `python -m ser.prefork .` (the image's server, `SER_DEMO=0`) with its settings added to
the environment; both are up at once (an idle one costs nothing). For each round and each level
(closed loop, clips posted as the request body, `loadtests.loadgen` in its own process; then each
``--rates`` as open-loop Poisson arrivals, at most 256 in flight, as `make bench`'s) side A runs,
then side B, so drift in what else a shared machine runs hits both alike. Reported per run: req/s,
p50/p99, the CPU time of the server's process tree per request (warm-up included), which is steadier
than throughput on a shared machine, and each worker's share of the workers' CPU (how evenly the
connections spread the load); then per level the mean of B / A over the rounds (at a fixed arrival
rate the throughput is the rate's, so there the p99 ratio is the one to read). `make bench`
measures the served configuration against its baselines; this answers "does this one setting help"
at a fraction of the time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

from loadtests.bench_servers import (
    BIN,
    OPEN_LOOP_CAP,
    cpu_by_process,
    first_prediction,
    free_port,
    load,
    start,
    stop,
    tail,
)
from loadtests.clips import load_clips, write_bodies


def parse_setting(text: str) -> dict[str, str]:
    """``NAME=value[,NAME=value]`` → a dict; an empty string is no setting (the defaults)."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not name.startswith("SER_"):
            raise argparse.ArgumentTypeError(f"{part!r}: expected SER_NAME=value")
        out[name] = value
    return out


def serve(model: str, setting: dict[str, str], log: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SER_")}
    env.update({"SER_MODEL": model, "SER_DEMO": "0", **setting})
    cmd = [str(BIN / "python"), "-m", "ser.prefork", ".", "--host", "127.0.0.1", "--port", str(port)]
    return start(cmd, env, log), f"http://127.0.0.1:{port}/predict"


def worker_shares(before: dict, after: dict) -> list[float]:
    """Each worker's share of the workers' CPU between two `cpu_by_process` readings, largest
    first: how evenly the connections spread the load (1/n each when even)."""
    used = [s - before.get(pid, (role, 0.0))[1] for pid, (role, s) in after.items() if role == "worker ser"]
    total = sum(used) or 1.0
    return sorted((round(u / total, 3) for u in used), reverse=True)


def run(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="ser-ab-"))
    bodies = work / "bodies"
    first = write_bodies(bodies, load_clips(args.clips, "auto"))[0]
    sides = {"A": args.a, "B": args.b}
    procs, urls = {}, {}
    try:
        for name, setting in sides.items():
            procs[name], urls[name] = serve(args.model, setting, work / f"{name}.log")
        for name, proc in procs.items():
            try:
                first_prediction(
                    urls[name], (first.read_bytes(), "audio/wav"), lambda p=proc: p.poll() is None
                )
            except RuntimeError as e:
                raise SystemExit(f"side {name} ({sides[name]}): {e}\n{tail(work / f'{name}.log')}") from e
        runs = []
        loads = [(c, 0.0) for c in args.levels] + [(OPEN_LOOP_CAP, r) for r in args.rates]
        for rnd in range(1, args.rounds + 1):
            for clients, rate in loads:
                for name in sides:
                    before = cpu_by_process(procs[name].pid)
                    res = load(urls[name], bodies, work / "level.json", concurrency=clients, rate=rate,
                               warmup=args.warmup, duration=args.duration, raw=True)  # fmt: skip
                    after = cpu_by_process(procs[name].pid)
                    cpu = sum(v for _, v in after.values()) - sum(v for _, v in before.values())
                    row = {"side": name, "round": rnd, "clients": clients, "rate": rate, "rps": res["ok_rps"],
                           "p50_ms": res["p50_ms"], "p99_ms": res["p99_ms"], "errors": res["errors"],
                           "cpu_ms_per_request": 1000 * cpu / max(res["all_requests"], 1),
                           "worker_cpu_shares": worker_shares(before, after)}  # fmt: skip
                    runs.append(row)
                    print(
                        f"round {rnd} {label(level_key(row)):<9} {name}: {row['rps']:7.1f} req/s"
                        f"  p50 {row['p50_ms']:6.1f}"
                        f"  p99 {row['p99_ms']:6.1f} ms  CPU {row['cpu_ms_per_request']:5.2f} ms/request"
                        f"  workers' CPU {row['worker_cpu_shares']}  errors {row['errors']}",
                        flush=True,
                    )
    finally:
        for proc in procs.values():
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)  # A failed start printed its log's tail above.
    return {"model": args.model, "a": sides["A"], "b": sides["B"], "runs": runs, "summary": summary(runs)}


def level_key(row: dict) -> str:
    """A closed loop's clients (``"32"``) or an open loop's arrival rate (``"200/s"``)."""
    return f"{row['rate']:g}/s" if row.get("rate") else str(row["clients"])


def label(key: str) -> str:
    """A level's key as printed: ``c=32`` or ``200/s``."""
    return key if key.endswith("/s") else f"c={key}"


def summary(runs: list[dict]) -> dict[str, dict[str, float]]:
    """Per level, in the order run: the mean over rounds of B / A for req/s, p99 and CPU per request."""
    out = {}
    for level in dict.fromkeys(map(level_key, runs)):
        pairs = {}
        for r in runs:
            if level_key(r) == level:
                pairs.setdefault(r["round"], {})[r["side"]] = r
        both = [p for p in pairs.values() if {"A", "B"} <= set(p)]
        out[level] = {
            key: sum(p["B"][key] / p["A"][key] for p in both) / len(both)
            for key in ("rps", "p99_ms", "cpu_ms_per_request")
        }
    return out


def numbers(kind):
    return lambda text: [kind(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m loadtests.ab", description=__doc__.split("\n")[0])
    p.add_argument("--model", default="ser_lstm:latest")
    p.add_argument("--a", type=parse_setting, default={}, help="SER_NAME=value[,...] (default: none)")
    p.add_argument("--b", type=parse_setting, required=True, help="SER_NAME=value[,...]")
    p.add_argument("--levels", type=numbers(int), default=[8, 32], help="closed loop: clients (empty: none)")
    p.add_argument("--rates", type=numbers(float), default=[], help="open loop: Poisson arrivals per second")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--clips", type=int, default=16)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if not args.levels and not args.rates:
        p.error("nothing to measure: give --levels (clients) or --rates (arrivals per second)")
    result = run(args)
    for level, ratio in result["summary"].items():
        print(
            f"{label(level)}: B / A req/s {ratio['rps']:.3f},"
            f" p99 {ratio['p99_ms']:.3f}, CPU per request {ratio['cpu_ms_per_request']:.3f}"
            f"  (A: {args.a or 'defaults'}, B: {args.b})"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
