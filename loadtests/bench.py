"""`make bench`: the service's speed against its in-process limit, itself unbatched and a seed-style peer.

    python -m loadtests.bench                           # trains a small bilstm model into a temp store
    python -m loadtests.bench --model ser_lstm:latest   # reuse a model of your store (BENTOML_HOME)
    python -m loadtests.bench --levels 1,8 --duration 5 --out /tmp/bench   # a quick try

One run on one machine (about 8 minutes on 2 cores), everything against 127.0.0.1:
1. a model (trained for a few epochs on the synthetic corpus, or exported from your store) in a
   temporary BENTOML_HOME, and `bentoml build` of the bento;
2. the in-process limit (`loadtests.bench_inproc`): decode + features + batched model, no HTTP
   (measured again beside each load level, as the machine's speed drifts);
3. three servers, each started and timed (process start → first answered /predict), then warmed:
   ours as the image serves it (`python -m ser.prefork <bento>`) with adaptive batching, the same
   with SER_MAX_BATCH_SIZE=1 (batching off), and the seed-style peer (`loadtests.peer_app`,
   gunicorn, 2 workers); `bentoml serve <bento>` is started and timed too (cold start only);
4. closed-loop load at each concurrency level (`loadtests.loadgen`, its own process), the servers
   taking turns within each level so that drift in a shared machine's load hits all alike; mean
   batch size from /metrics, CPU per request and RSS per process (psutil); then open-loop runs
   (Poisson arrivals) at 1/2, 1/8 and 1/4 of the best batched throughput;
5. the container image's cold start and size when podman/docker has the image (--image).
Writes report.md, throughput.png, latency.png and results.json to --out (default bench/).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from loadtests import bench_report as report
from loadtests import bench_servers as srv
from loadtests import clips as audio
from loadtests.bench_container import container_cold_start
from ser.settings import WORKER_ENVS, usable_cpus

BIN, REPO = srv.BIN, srv.REPO


def _run(cmd: list[str], env: dict, timeout: float = 900, cwd: Path = REPO) -> str:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return out.stdout


def model_into(home: Path, args, env: dict, tmp: Path) -> str:
    """A model in the temp store: exported from the user's store (--model) or trained; its tag."""
    if args.model:
        archive = tmp / "model.bentomodel"
        _run([str(BIN / "bentoml"), "models", "export", args.model, str(archive)], dict(os.environ))
        _run([str(BIN / "bentoml"), "models", "import", str(archive)], env)
        models = json.loads(_run([str(BIN / "bentoml"), "models", "list", "-o", "json"], env))
        return models[0]["tag"]
    corpus = audio.synthetic_corpus()
    cmd = [str(BIN / "python"), "-m", "training.train", "--data", str(corpus), "--preset", args.preset]
    cmd += ["--epochs", str(args.epochs), "--test-size", "28", "--report", str(tmp / "train-report")]
    out = _run(cmd, env)
    return next(line.split()[-1] for line in out.splitlines() if line.startswith("saved: "))


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    base: str
    log: Path
    batching: bool
    raw: bool = False  # Requests carry the audio as the body (ser/raw_upload.py), not a multipart form.
    out: dict = field(default_factory=dict)


def start_server(
    name: str,
    cmd,
    env: dict,
    bodies: Path,
    tmp: Path,
    *,
    cwd: Path,
    batching: bool,
    warm: bool = True,
    raw: bool = False,
) -> Server:
    """Start a server, time its cold start (process start → first answered /predict) and warm it."""
    port = srv.free_port()
    log = tmp / f"{name}.log"
    print(f"{name}: {shlex.join(cmd(port))}", flush=True)
    body = audio.multipart("audio", [(p.name, p.read_bytes()) for p in sorted(bodies.iterdir())[:1]])
    started = time.perf_counter()
    s = Server(name, srv.start(cmd(port), env, log, cwd=cwd), f"http://127.0.0.1:{port}", log, batching, raw)
    try:
        cold = srv.first_prediction(f"{s.base}/predict", body, lambda: s.proc.poll() is None, since=started)
        print(f"  first answered prediction after {cold:.1f} s", flush=True)
        # Warm every worker (the peer's first librosa call per worker is slow; BentoML's dispatcher
        # runs its unbatched warm-up calls) so that no level pays for it.
        if warm:
            warm_out = tmp / f"{name}-warm.json"
            srv.load(f"{s.base}/predict", bodies, warm_out, concurrency=4, warmup=0, duration=4)
    except Exception as e:
        srv.stop(s.proc)
        raise RuntimeError(f"{name}: {e}\n{srv.tail(log)}") from e
    s.out.update(cold_start_s=cold, rss_ready=srv.rss_tree(s.proc.pid), levels={})
    return s


OPEN_LOOP_SHARES = (0.125, 0.25)  # Of the best closed-loop throughput, beside the target's half.


def measure(s: Server, bodies: Path, tmp: Path, args, c: int, rate: float = 0.0) -> dict:
    """One bounded load run against ``s``: the loadgen's numbers, mean batch, CPU per request."""
    before = srv.batch_counts(s.base) if s.batching else None
    cpu0 = srv.cpu_by_role(s.proc.pid)
    out = tmp / f"{s.name}-{c}-{rate:g}.json"
    r = srv.load(
        f"{s.base}/predict",
        bodies,
        out,
        concurrency=c,
        warmup=args.warmup,
        duration=args.duration,
        rate=rate,
        raw=s.raw,
    )
    if before:
        inputs, batches = (a - b for a, b in zip(srv.batch_counts(s.base), before, strict=True))
        r["mean_batch"] = inputs / batches if batches else None
    n = max(r["all_requests"], 1)
    cpu = {k: 1000 * (v - cpu0.get(k, 0.0)) / n for k, v in srv.cpu_by_role(s.proc.pid).items()}
    r["cpu_ms_per_request"] = {**cpu, "load generator": 1000 * r["loadgen_cpu_s"] / n}
    what = f"open loop {rate:.1f}/s" if rate else f"c={c:3d}"
    print(
        f"  {s.name:9s} {what}: {r['ok_rps']:6.1f} req/s  p50 {r['p50_ms']:5.0f}  p99 {r['p99_ms']:5.0f} ms  "
        f"errors {r['errors']}  batch {r.get('mean_batch') or '-'}",
        flush=True,
    )
    return r


def inproc_all_cores(cmd: list[str], env: dict, tmp: Path) -> dict:
    """The machine's ceiling: one in-process run per core, all at once (the service runs one worker
    per core); clips/s summed over the processes, per batch size."""
    cores = usable_cpus()  # As the service's SER_WORKERS default.
    outs = [tmp / f"inproc-core{i}.json" for i in range(cores)]
    procs = [
        subprocess.Popen(  # Their JSON goes to --out; the bench's log keeps to one line per step.
            [*cmd[: cmd.index("--out")], "--out", str(out)],
            env={**env, "OPENBLAS_NUM_THREADS": "1"},
            stdout=subprocess.DEVNULL,
        )
        for out in outs
    ]
    if any(p.wait() != 0 for p in procs):
        raise RuntimeError("an in-process run on all cores failed")
    runs = [json.loads(out.read_text()) for out in outs]
    per_batch = {b: sum(r["clips_per_s"][b] for r in runs) for b in runs[0]["clips_per_s"]}
    best = max(per_batch, key=per_batch.get)
    return {
        "processes": cores,
        "clips_per_s": per_batch,
        "best_batch": int(best),
        "best_clips_per_s": per_batch[best],
    }


def inproc_beside(inproc_cmd: list[str], env: dict, tmp: Path) -> float:
    """The in-process limit again (all cores, batch 64, one short round), measured beside a load
    level: the machine's speed drifts over a run, and the ratio to the limit should not."""
    quick = [*inproc_cmd[: inproc_cmd.index("--out")], "--limit-only", "--batches", "64", "--rounds", "1"]
    return inproc_all_cores([*quick, "--out", str(tmp / "inproc-beside.json")], env, tmp)["best_clips_per_s"]


def run_servers(bento: str, env: dict, bodies: Path, tmp: Path, args, inproc_cmd: list[str]) -> dict:
    """All three servers up at once (idle ones cost nothing), levels interleaved so drift in the
    shared machine's load hits every configuration alike; the in-process limit beside each level."""

    def serve(port: int) -> list[str]:  # As the image serves it (ser/prefork.py).
        return [str(BIN / "python"), "-m", "ser.prefork", bento, "--host", "127.0.0.1", "--port", str(port)]

    def bentoml_serve(port: int) -> list[str]:
        return [str(BIN / "bentoml"), "serve", bento, "--host", "127.0.0.1", "--port", str(port)]

    def peer(port: int) -> list[str]:
        gunicorn = [str(BIN / "gunicorn"), "-w", "2", "--timeout", "120"]
        return [*gunicorn, "-b", f"127.0.0.1:{port}", "loadtests.peer_app:app"]

    def own_home(name: str) -> dict:
        """The env with a BENTOML_HOME of its own sharing the stores: `bentoml serve` wipes the
        home's Prometheus folder at start, which would reset the other server's /metrics."""
        home = tmp / f"home-{name}"
        home.mkdir()
        for store in ("bentos", "models"):
            (home / store).symlink_to(Path(env["BENTOML_HOME"]) / store)
        return {**env, "BENTOML_HOME": str(home)}

    servers: list[Server] = []
    cold_only = start_server(  # Its cold start and memory only: its workers are the same code.
        "bentoml_serve", bentoml_serve, own_home("bentoml"), bodies, tmp, cwd=tmp, batching=True, warm=False
    )
    srv.stop(cold_only.proc)
    try:
        # The image declares the service's envs (bentofile.yaml, service.py), so ser.prefork starts
        # once; without them it restarts itself to apply them, a second import (ser/prefork.py).
        image_envs = {e["name"]: e["value"] for e in WORKER_ENVS}
        batched_env = {**own_home("batched"), **image_envs}
        batched = start_server("batched", serve, batched_env, bodies, tmp, cwd=tmp, batching=True, raw=True)
        # The same server, sent multipart forms (what BentoML's own route parses) instead of bodies.
        multipart = Server("multipart", batched.proc, batched.base, batched.log, True, False, {"levels": {}})
        servers += [batched, multipart]
        unbatched_env = {**own_home("unbatched"), **image_envs, "SER_MAX_BATCH_SIZE": "1"}
        servers.append(
            start_server("unbatched", serve, unbatched_env, bodies, tmp, cwd=tmp, batching=True, raw=True)
        )
        servers.append(start_server("peer", peer, env, bodies, tmp, cwd=REPO, batching=False))
        for c in args.levels:
            for s in servers:
                s.out["levels"][str(c)] = measure(s, bodies, tmp, args, c)
            batched.out.setdefault("inproc_beside", {})[str(c)] = limit = inproc_beside(inproc_cmd, env, tmp)
            print(f"  in-process limit beside c={c}: {limit:.1f} clips/s", flush=True)
        best = max(r["ok_rps"] for r in batched.out["levels"].values())
        batched.out["half_rate"] = measure(batched, bodies, tmp, args, srv.OPEN_LOOP_CAP, rate=best / 2)
        # Lighter Poisson loads too: whether the tail at half load is saturation or there at any load.
        batched.out["open_loop"] = {
            f"{f:g}": measure(batched, bodies, tmp, args, srv.OPEN_LOOP_CAP, rate=best * f)
            for f in OPEN_LOOP_SHARES
        }
        for s in servers:
            s.out["rss_loaded"] = srv.rss_tree(s.proc.pid)
        return {s.name: s.out for s in servers} | {cold_only.name: cold_only.out}
    finally:
        for s in servers:
            srv.stop(s.proc)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m loadtests.bench", description=__doc__.split("\n")[0])
    p.add_argument("--model", default="", help="reuse this model of your store (default: train one)")
    p.add_argument("--preset", default="bilstm", help="preset to train when --model is not given")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--levels", default="1,8,32,64", type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--warmup", type=float, default=3.0, help="seconds not measured per level")
    p.add_argument("--duration", type=float, default=15.0, help="seconds measured per level")
    p.add_argument("--clips", type=int, default=16, help="clips to send (TESS if present, else synthetic)")
    p.add_argument("--image", default=os.environ.get("SER_BENCH_IMAGE", "localhost/ser:test"))
    p.add_argument("--out", type=Path, default=REPO / "bench")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started, load_start = time.time(), os.getloadavg()
    results: dict = {"meta": report.machine_meta(), "configs": {}}
    with tempfile.TemporaryDirectory(prefix="ser-bench-") as tmp_name:
        tmp = Path(tmp_name)
        home, bodies = tmp / "bentoml", tmp / "bodies"
        clips = audio.load_clips(args.clips)
        audio.write_bodies(bodies, clips)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SER_")}
        env.update(BENTOML_HOME=str(home), BENTOML_DO_NOT_TRACK="True", TF_CPP_MIN_LOG_LEVEL="2")
        print("model …", flush=True)
        tag = model_into(home, args, env, tmp)
        env["SER_MODEL"] = tag
        # Served as the image serves it: no Gradio demo (which would hold the service to one
        # worker, gradio_demo/mount.py), so SER_WORKERS takes its default, one per usable CPU.
        env["SER_DEMO"] = "0"
        bento = _run([str(BIN / "bentoml"), "build", "--output", "tag"], env).strip().splitlines()[-1]
        bento = bento.removeprefix("__tag__:")
        print(f"model {tag}, bento {bento}; in-process limit …", flush=True)
        inproc = tmp / "inproc.json"
        inproc_cmd = [str(BIN / "python"), "-m", "loadtests.bench_inproc", "--model", tag]
        inproc_cmd += ["--bodies", str(bodies), "--out", str(inproc)]
        _run(inproc_cmd, {**env, "OPENBLAS_NUM_THREADS": "1"})  # One thread, as each service worker.
        results["inproc"] = json.loads(inproc.read_text())
        results["inproc"]["all_cores"] = inproc_all_cores(inproc_cmd, env, tmp)

        results["configs"] = run_servers(bento, env, bodies, tmp, args, inproc_cmd)
        print("container …", flush=True)
        results["container"] = container_cold_start(args.image, bodies)
    results["meta"].update(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        command=f"make bench  ({shlex.join(['python', '-m', 'loadtests.bench', *sys.argv[1:]])})",
        elapsed_s=round(time.time() - started),
        loadavg_start=[round(x, 2) for x in load_start],
        loadavg_end=[round(x, 2) for x in os.getloadavg()],
        model={
            "tag": tag,
            "preset": results["inproc"]["preset"],
            "input_shape": results["inproc"]["input_shape"],
            "source": "your store" if args.model else f"trained {args.epochs} epochs on the synthetic corpus",
        },
        clips=report.clip_meta(clips),
        settings={"levels": args.levels, "warmup_s": args.warmup, "duration_s": args.duration},
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    report.write(results, args.out)
    print(f"wrote {args.out}/report.md in {results['meta']['elapsed_s']} s")
    return results


if __name__ == "__main__":
    main()
