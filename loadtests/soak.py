"""Soak test and a small load generator that records every request (asyncio + aiohttp).

    python -m loadtests.soak run --minutes 10                  # make soak: serve, step up, soak, report
    python -m loadtests.soak load --url http://127.0.0.1:3000/predict --bodies DIR \\
        --concurrency 8 --duration 20 --out load.json          # one load phase (tests/test_faults.py)

``run`` serves the model itself on a free port (``--server prefork``, the default, is the
container image's command `python -m ser.prefork service:SER`; ``--server bentoml`` is `bentoml
serve service:SER`; SER_* settings and BENTOML_HOME from the environment), measures the maximum
throughput with a short step-up of closed-loop concurrency, then holds an open-loop (Poisson)
load at ``--fraction`` (70 %) of it for ``--minutes``, one load-generator process per minute.
Every request is checked (200 and a JSON body with an emotion); the server's process tree is
sampled for RSS (psutil) every few seconds. Passes when no request failed and the tree's RSS grew
by less than ``--max-growth`` (5 %) from the first soak minute to the last. Writes a Markdown
report (default bench/soak.md) and exits 1 on a failed check.

``load`` is the generator alone, in its own process so it never competes with the server's
event loop. Bounded: nothing starts after ``--duration``, every request has ``--timeout``, and the
requests still in flight at the end are awaited (each within its timeout). Sends SER_API_KEY as a
bearer token when it is set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STEP_CONCURRENCY = (1, 2, 4, 8, 16, 32)
IN_FLIGHT_CAP = 256  # Open-loop arrivals beyond this many in flight are not sent (counted).


# --- the load generator ----------------------------------------------------------------------------
async def drive(
    url: str,
    bodies: list[tuple[bytes, str]],
    *,
    concurrency: int,
    duration: float,
    timeout: float,
    rate: float = 0.0,
    headers: dict[str, str] | None = None,
) -> list[dict]:
    """Post ``bodies`` in turn for ``duration`` s; one record per request (start/end offsets, status)."""
    import aiohttp

    from loadtests.loadgen import arrivals  # Imports aiohttp too: soak's other commands need neither.

    records: list[dict] = []
    start = time.perf_counter()
    end = start + duration
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    client_timeout = aiohttp.ClientTimeout(total=timeout)

    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:

        async def one(i: int) -> None:
            data, content_type = bodies[i % len(bodies)]
            t0 = time.perf_counter()
            record = {"t0": t0 - start, "status": 0, "error": None}
            try:
                async with session.post(
                    url, data=data, headers={**(headers or {}), "Content-Type": content_type}
                ) as r:
                    text = await r.text()
                    record["status"] = r.status
                    if r.status != 200:
                        record["error"] = f"HTTP {r.status}: {text[:200]}"
                    elif '"emotion"' not in text:
                        record["error"] = f"no emotion in the answer: {text[:200]}"
            except TimeoutError:
                record["status"], record["error"] = -1, f"client timeout after {timeout:g} s"
            except aiohttp.ClientError as e:
                record["error"] = f"{type(e).__name__}: {e}"[:200]
            record["t1"] = time.perf_counter() - start
            records.append(record)

        def drop() -> None:
            records.append({"t0": time.perf_counter() - start, "t1": None, "status": -2, "error": "dropped"})

        await arrivals(
            one, rate=rate, concurrency=concurrency, more=lambda _: time.perf_counter() < end, on_drop=drop
        )
    return records


def summarise(records: list[dict], duration: float) -> dict:
    done = [r for r in records if r["t1"] is not None]
    ok = [r for r in done if r["error"] is None]
    ms = sorted(1000 * (r["t1"] - r["t0"]) for r in done) or [0.0]

    def pct(p: float) -> float:
        return ms[min(len(ms) - 1, int(p / 100 * len(ms)))]

    errors = Counter((r["error"] or "")[:80] for r in done if r["error"])
    # Sent requests that did not end in a good 200; open-loop arrivals that found `concurrency`
    # requests in flight were never sent: "dropped" (the offered load outran the server).
    return {
        "requests": len(done),
        "ok": len(ok),
        "failed": len(done) - len(ok),
        "failure_ratio": (len(done) - len(ok)) / max(1, len(done)),
        "timeouts": sum(r["status"] == -1 for r in records),
        "dropped": sum(r["status"] == -2 for r in records),
        "ok_rps": len(ok) / duration,
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "max_ms": ms[-1],
        "codes": dict(Counter(str(r["status"]) for r in records)),
        "errors": dict(errors.most_common(10)),
    }


def read_bodies(folder: Path, field: str = "audio") -> list[tuple[bytes, str]]:
    from loadtests.clips import multipart

    files = sorted(p for p in folder.iterdir() if p.is_file())
    if not files:
        raise SystemExit(f"no files in {folder}")
    return [multipart(field, [(p.name, p.read_bytes())]) for p in files]


def auth_headers() -> dict[str, str]:
    from ser.security import read_api_key

    key = read_api_key()
    return {"Authorization": f"Bearer {key}"} if key else {}


def load_main(args: argparse.Namespace) -> dict:
    records = asyncio.run(
        drive(
            args.url,
            read_bodies(args.bodies, args.field),
            concurrency=args.concurrency,
            duration=args.duration,
            timeout=args.timeout,
            rate=args.rate,
            headers=auth_headers(),
        )
    )
    result = {**summarise(records, args.duration), "concurrency": args.concurrency, "rate": args.rate}
    if args.records:
        result["records"] = records
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)
    return result


# --- the soak ------------------------------------------------------------------------------------
def tree_rss(pid: int) -> dict[str, int]:
    """RSS in bytes of the server's processes, by role (arbiter, workers), summed per role."""
    import psutil

    out: Counter[str] = Counter()
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    for p in procs:
        try:
            rss = p.memory_info().rss
        except psutil.Error:
            continue
        out["arbiter" if p is root else "workers"] += rss
    out["total"] = sum(v for k, v in out.items())
    return dict(out)


def make_bodies(folder: Path, n: int = 16) -> str:
    """Clips of the corpus (TESS if present, else synthetic) as WAV and FLAC files in ``folder``."""
    from loadtests import clips

    source, _ = clips.corpus()
    folder.mkdir(parents=True, exist_ok=True)
    for i, clip in enumerate(clips.load_clips(n, max_s=5.0)):
        fmt = ("WAV", "FLAC")[i % 2]
        (folder / f"{i:02d}.{clips.SUFFIXES[fmt]}").write_bytes(clips.encode(clip, fmt))
    return source


SERVERS = {
    "prefork": [sys.executable, "-m", "ser.prefork", "service:SER"],
    "bentoml": [str(Path(sys.executable).parent / "bentoml"), "serve", "service:SER"],
}
SERVED_BY = {"prefork": "python -m ser.prefork service:SER", "bentoml": "bentoml serve service:SER"}


def start_server(port: int, log: Path, server: str = "prefork") -> subprocess.Popen:
    cmd = [*SERVERS[server], "--host", "127.0.0.1"]
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "True", "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.setdefault("SER_DEMO", "0")  # As the image serves: no demo, a worker per CPU (gradio_demo/mount.py)
    out = open(log, "w")  # noqa: SIM115 - the server owns it for its life.
    return subprocess.Popen(
        [*cmd, "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if requests.get(f"{url}/readyz", timeout=3).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server was not ready within {timeout:g} s")


def phase(url: str, bodies: Path, out: Path, pid: int | None, samples: list, *, label: str, **load) -> dict:
    """One load-generator process; samples the server's RSS every 5 s while it runs."""
    cmd = [sys.executable, "-m", "loadtests.soak", "load", "--url", f"{url}/predict", "--bodies", str(bodies)]
    for k, v in load.items():
        cmd += [f"--{k}", str(v)]
    cmd += ["--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=REPO)
    deadline = time.monotonic() + float(load["duration"]) + float(load.get("timeout", 60)) + 60
    started = time.monotonic()
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"load generator of {label} did not finish")
        if pid and time.monotonic() - started >= 5 * (1 + sum(s["phase"] == label for s in samples)):
            samples.append({"phase": label, "t": time.time(), **tree_rss(pid)})
        time.sleep(0.5)
    if proc.returncode:
        raise SystemExit(f"load generator of {label} failed with {proc.returncode}")
    return json.loads(out.read_text())


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def soak(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="ser-soak-"))
    bodies = work / "bodies"
    source = make_bodies(bodies)
    proc = None
    if args.url:
        url, pid = args.url.rstrip("/"), args.pid
    else:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start_server(port, work / "serve.log", args.server)
        pid = proc.pid
    samples: list[dict] = []
    steps: list[dict] = []
    minutes: list[dict] = []
    started = time.time()
    try:
        wait_ready(url, proc) if proc else None
        print(f"soak: serving at {url}, bodies from {source}, work dir {work}", flush=True)
        phase(url, bodies, work / "warmup.json", pid, samples, label="warmup", concurrency=4, duration=10)
        best = 0.0
        for c in STEP_CONCURRENCY:
            result = phase(
                url,
                bodies,
                work / f"step{c}.json",
                pid,
                samples,
                label=f"step{c}",
                concurrency=c,
                duration=args.step_s,
            )
            steps.append(result)
            print(
                f"  step-up c={c}: {result['ok_rps']:.1f} ok/s, p95 {result['p95_ms']:.0f} ms, "
                f"{result['failed']} failed",
                flush=True,
            )
            if result["ok_rps"] < 0.9 * best:
                break  # Past saturation.
            best = max(best, result["ok_rps"])
        rate = args.fraction * best
        print(
            f"soak: {args.minutes:g} min at {rate:.1f} req/s ({args.fraction:.0%} of {best:.1f})", flush=True
        )
        for m in range(int(args.minutes)):
            result = phase(
                url,
                bodies,
                work / f"minute{m}.json",
                pid,
                samples,
                label=f"minute{m}",
                rate=f"{rate:.3f}",
                concurrency=IN_FLIGHT_CAP,
                duration=60,
                timeout=60,
            )
            rss = [s["total"] for s in samples if s["phase"] == f"minute{m}" and "total" in s]
            result["rss_mb"] = statistics.median(rss) / 1e6 if rss else float("nan")
            minutes.append(result)
            print(
                f"  minute {m + 1}: {result['ok_rps']:.1f} ok/s, p95 {result['p95_ms']:.0f} ms, "
                f"{result['failed']} failed, RSS {result['rss_mb']:.0f} MB",
                flush=True,
            )
    finally:
        if proc and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    failed = sum(m["failed"] for m in minutes)
    total = sum(m["requests"] for m in minutes)
    first, last = (minutes[0]["rss_mb"], minutes[-1]["rss_mb"]) if minutes else (float("nan"),) * 2
    growth = (last - first) / first if minutes else float("nan")
    ok = bool(minutes) and failed == 0 and growth < args.max_growth
    report = render(
        args,
        url,
        source,
        steps,
        minutes,
        samples,
        rate if minutes else 0.0,
        failed,
        total,
        growth,
        ok,
        started,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    (args.out.with_suffix(".json")).write_text(
        json.dumps({"steps": steps, "minutes": minutes, "rss": samples}, indent=1)
    )
    print(report)
    return 0 if ok else 1


def render(args, url, source, steps, minutes, samples, rate, failed, total, growth, ok, started) -> str:
    import platform

    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    dropped = sum(m["dropped"] for m in minutes)
    model = os.environ.get("SER_MODEL", "ser_lstm:latest")
    change = "grew" if growth >= 0 else "shrank"
    lines = [
        "# Soak test",
        "",
        f"`make soak SOAK_MIN={args.minutes:g}` on {when}, served by `{SERVED_BY[args.server]}`; "
        f"{os.cpu_count()} CPUs ({platform.machine()}), load generator and server on the same machine; "
        f"clips from the {source} corpus (WAV and FLAC, ≤ 5 s) to /predict; model `{model}`.",
        "",
        f"**{'PASS' if ok else 'FAIL'}**: {failed} of {total} soak requests failed (required: 0); "
        f"server RSS {change} {abs(growth):.1%} from the first to the last minute "
        f"(required: < {args.max_growth:.0%}).",
        *(
            [
                "",
                f"{dropped} arrivals were not sent: {IN_FLIGHT_CAP} requests were already in flight "
                "(the offered load outran the server — other work on the machine, or a rate too high).",
            ]
            if dropped
            else []
        ),
        "",
        f"## Step-up (closed loop, {args.step_s:g} s per step)",
        "",
        "| clients | ok req/s | p50 ms | p95 ms | p99 ms | failed |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {s['concurrency']} | {s['ok_rps']:.1f} | {s['p50_ms']:.0f} | {s['p95_ms']:.0f} | "
        f"{s['p99_ms']:.0f} | {s['failed']} |"
        for s in steps
    ]
    lines += [
        "",
        f"## Soak (open loop, Poisson arrivals at {rate:.1f} req/s = {args.fraction:.0%} of the best step)",
        "",
        "| minute | ok req/s | p50 ms | p95 ms | p99 ms | max ms | failed | not sent | RSS MB (tree) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {i + 1} | {m['ok_rps']:.1f} | {m['p50_ms']:.0f} | {m['p95_ms']:.0f} | {m['p99_ms']:.0f} | "
        f"{m['max_ms']:.0f} | {m['failed']} | {m['dropped']} | {m['rss_mb']:.0f} |"
        for i, m in enumerate(minutes)
    ]
    by_role = {}
    for role in ("arbiter", "workers"):
        first = [s[role] for s in samples if s["phase"] == "minute0" and role in s]
        last = [
            s[role] for s in samples if minutes and s["phase"] == f"minute{len(minutes) - 1}" and role in s
        ]
        if first and last:
            by_role[role] = (statistics.median(first) / 1e6, statistics.median(last) / 1e6)
    if by_role:
        lines += [
            "",
            "RSS by process (median MB, first → last minute): "
            + "; ".join(f"{role} {a:.0f} → {b:.0f}" for role, (a, b) in by_role.items())
            + ".",
        ]
    errors = Counter()
    for m in minutes:
        errors.update(m["errors"])
    if errors:
        lines += ["", "Errors:", ""] + [f"- {n} × {e}" for e, n in errors.most_common(10)]
    lines += ["", f"Raw numbers: `{args.out.with_suffix('.json').name}` beside this file.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtests.soak", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    load = sub.add_parser("load", help="one load phase against a running service")
    load.add_argument("--url", required=True, help="full URL to POST to, e.g. http://127.0.0.1:3000/predict")
    load.add_argument("--bodies", required=True, type=Path, help="folder of audio files, sent in turn")
    load.add_argument("--field", default="audio")
    load.add_argument("--concurrency", type=int, default=8, help="clients (closed loop) or in-flight cap")
    load.add_argument("--rate", type=float, default=0.0, help="open loop: mean arrivals per second")
    load.add_argument("--duration", type=float, default=20.0)
    load.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    load.add_argument("--records", action="store_true", help="include every request in the output")
    load.add_argument("--out", type=Path, default=None)
    run = sub.add_parser("run", help="serve, step up, soak, report")
    run.add_argument("--server", choices=sorted(SERVERS), default="prefork", help="prefork: as the image")
    run.add_argument(
        "--minutes", type=int, default=int(os.environ.get("SOAK_MIN", "10")), help="whole minutes, ≥ 2"
    )
    run.add_argument("--fraction", type=float, default=0.7, help="share of the measured maximum to hold")
    run.add_argument("--step-s", type=float, default=10.0, help="seconds per step-up level")
    run.add_argument("--max-growth", type=float, default=0.05, help="largest RSS growth that passes")
    run.add_argument("--url", default=None, help="soak a running service instead (RSS needs --pid)")
    run.add_argument("--pid", type=int, default=None, help="the running service's top process")
    run.add_argument("--out", type=Path, default=REPO / "bench" / "soak.md")
    args = p.parse_args(argv)
    if args.command == "run" and args.minutes < 2:
        p.error(f"--minutes {args.minutes}: growth is measured from the first minute to the last, need ≥ 2")
    if args.command == "load":
        load_main(args)
        return 0
    return soak(args)


if __name__ == "__main__":
    sys.exit(main())
