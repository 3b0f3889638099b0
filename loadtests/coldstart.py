"""A serving image's cold start, as a serverless platform sees it: `run` → first answered /predict.

    python -m loadtests.coldstart --image localhost/ser:latest              # 3 cold starts, a table
    python -m loadtests.coldstart --image localhost/ser:latest --json out.json --repeats 5

`measure(image)` returns a dict (for `make bench` and tests/test_container.py):

    {"image", "engine", "size_mb", "base_image", "base_size_mb", "added_mb",
     "runs": [{"start_to_ready_s", "start_to_first_predict_s", "cpu_s", "rss_mb", "processes"}, ...],
     "start_to_first_predict_s", "start_to_ready_s", "cpu_s", "rss_mb": medians over runs,
     "load_average": the machine's 1-minute load average at the end}

or ``{"image", "skipped": reason}`` when there is no engine or no such image. The image is not
built here (`make image` builds it, ~1 min for the slim one). Each run starts a fresh container
with ``PORT`` set (as Cloud Run and Knative do), times POST /predict until it answers 200 (and
GET /readyz in between), reads the RSS of every process in the container once answered, then
removes it. RSS and CPU seconds are summed over the container's processes, read from the host's
/proc: the CPU seconds used up to the first answer do not depend on other work on the machine,
the wall-clock times do (quote the load average with them).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import requests
import soundfile as sf

CONTAINERS_CONF = Path("/var/tmp/local-base-image/containers.conf")  # From ../shared/tools/local-base-image.
BASE_IMAGE = "docker.io/library/python:3.11-slim"  # What bentofile.yaml builds FROM.
PORT = 8080  # Inside the container, given through $PORT.


def engine() -> tuple[str | None, dict]:
    """(podman or docker executable, environment for it)."""
    exe = shutil.which("podman") or shutil.which("docker")
    env = dict(os.environ)
    if exe and exe.endswith("podman") and CONTAINERS_CONF.exists():
        env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    return exe, env


def test_clip(seconds: float = 2.0, sr: int = 16_000) -> bytes:
    """A speech-like WAV: a harmonic tone with a syllable-rate envelope."""
    t = np.arange(int(seconds * sr)) / sr
    y = sum(np.sin(2 * np.pi * 180 * k * t) / k for k in range(1, 8)) * (0.55 + 0.45 * np.sin(6 * np.pi * t))
    buf = io.BytesIO()
    sf.write(buf, (0.1 * y).astype(np.float32), sr, format="WAV")
    return buf.getvalue()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                continue
    return out


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process and of its children it has reaped."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime


def container_cpu_s(exe: str, env: dict, name: str) -> float:
    """CPU seconds the container's processes have used so far: a load-independent cold-start cost."""
    pid = subprocess.run(
        [exe, "inspect", name, "--format", "{{.State.Pid}}"], env=env, capture_output=True, text=True
    ).stdout.strip()
    if not pid.isdigit() or int(pid) <= 0:
        return 0.0
    return round(sum(_cpu_s(p) for p in _descendants(int(pid))), 2)


def container_rss(exe: str, env: dict, name: str) -> tuple[float, list[dict]]:
    """(total RSS in MB, [{"pid", "rss_mb", "cmd"}]) of the container's processes, from the host's /proc."""
    pid = subprocess.run(
        [exe, "inspect", name, "--format", "{{.State.Pid}}"], env=env, capture_output=True, text=True
    ).stdout.strip()
    if not pid.isdigit() or int(pid) <= 0:
        return 0.0, []
    procs = []
    for p in _descendants(int(pid)):
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        procs.append({"pid": p, "rss_mb": round(_rss_mb(p), 1), "cmd": cmd.strip()[:120]})
    return round(sum(p["rss_mb"] for p in procs), 1), procs


def _size_mb(exe: str, env: dict, image: str) -> float | None:
    out = subprocess.run(
        [exe, "image", "inspect", image, "--format", "{{.Size}}"], env=env, capture_output=True, text=True
    )
    return round(int(out.stdout.strip()) / 1e6, 1) if out.returncode == 0 and out.stdout.strip() else None


def one_cold_start(
    exe: str, env: dict, image: str, clip: bytes, timeout: float = 180, envs: tuple[str, ...] = ()
) -> dict:
    """Start a container, time /readyz and the first 200 from /predict, read its RSS, remove it."""
    port, name = _free_port(), f"ser-coldstart-{os.getpid()}-{time.monotonic_ns()}"
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    run = subprocess.run(
        [
            exe,
            "run",
            "-d",
            "--rm",
            "--name",
            name,
            "-e",
            f"PORT={PORT}",
            "-p",
            f"127.0.0.1:{port}:{PORT}",
            *(arg for e in envs for arg in ("-e", e)),
            image,
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        raise RuntimeError(f"{exe} run failed: {run.stderr.strip()[:500]}")
    ready = first = None
    try:
        with requests.Session() as s:
            while time.perf_counter() - started < timeout:
                try:
                    if ready is None and s.get(f"{url}/readyz", timeout=5).status_code == 200:
                        ready = time.perf_counter() - started
                    r = s.post(f"{url}/predict", files={"audio": ("clip.wav", clip)}, timeout=30)
                    if r.status_code == 200:
                        first = time.perf_counter() - started
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.02)
        if first is None:
            logs = subprocess.run([exe, "logs", name], env=env, capture_output=True, text=True)
            raise RuntimeError(
                f"no answer from /predict within {timeout} s:\n{logs.stdout[-2000:]}{logs.stderr[-2000:]}"
            )
        cpu = container_cpu_s(exe, env, name)
        rss, procs = container_rss(exe, env, name)
        return {
            "start_to_ready_s": round(ready if ready is not None else first, 2),
            "start_to_first_predict_s": round(first, 2),
            "cpu_s": cpu,
            "rss_mb": rss,
            "processes": procs,
        }
    finally:
        subprocess.run([exe, "rm", "-f", "-t", "1", name], env=env, capture_output=True)


def measure(
    image: str,
    *,
    repeats: int = 3,
    base_image: str = BASE_IMAGE,
    clip: bytes | None = None,
    envs: tuple[str, ...] = (),
) -> dict:
    """Size of ``image`` (and what it adds to ``base_image``) and ``repeats`` cold starts.

    ``envs``: extra ``KEY=VALUE`` settings for the container (e.g. ``SER_RUNTIME=keras``).
    """
    exe, env = engine()
    if exe is None:
        return {"image": image, "skipped": "no container engine (podman or docker) on this machine"}
    size = _size_mb(exe, env, image)
    if size is None:
        return {"image": image, "skipped": f"image {image} not found (build it: `make image`)"}
    base = _size_mb(exe, env, base_image)
    runs = [one_cold_start(exe, env, image, clip or test_clip(), envs=tuple(envs)) for _ in range(repeats)]
    return {
        "image": image,
        "engine": Path(exe).name,
        "size_mb": size,
        "base_image": base_image,
        "base_size_mb": base,
        "added_mb": None if base is None else round(size - base, 1),
        "runs": runs,
        "start_to_first_predict_s": statistics.median(r["start_to_first_predict_s"] for r in runs),
        "start_to_ready_s": statistics.median(r["start_to_ready_s"] for r in runs),
        "cpu_s": statistics.median(r["cpu_s"] for r in runs),
        "rss_mb": statistics.median(r["rss_mb"] for r in runs),
        "load_average": os.getloadavg()[0],  # Other work on the machine stretches the times above.
    }


def format_result(result: dict) -> str:
    if "skipped" in result:
        return f"{result['image']}: skipped: {result['skipped']}"
    lines = [
        f"image {result['image']}: {result['size_mb']:.0f} MB; base {result['base_image']} "
        f"{result['base_size_mb']} MB; added {result['added_mb']} MB",
        "run  start→/readyz  start→first /predict  CPU (s)  RSS (MB)",
    ]
    for i, r in enumerate(result["runs"], 1):
        ready, first = r["start_to_ready_s"], r["start_to_first_predict_s"]
        lines.append(f"{i:>3}  {ready:>12.2f}  {first:>20.2f}  {r['cpu_s']:>7.2f}  {r['rss_mb']:>8.0f}")
    first, cpu, rss = result["start_to_first_predict_s"], result["cpu_s"], result["rss_mb"]
    lines.append(
        f"median: start→first /predict {first:.2f} s, CPU {cpu:.2f} s, RSS {rss:.0f} MB "
        f"(load average {result['load_average']:.1f})"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m loadtests.coldstart", description=__doc__.split("\n")[0])
    p.add_argument("--image", default="localhost/ser:latest")
    p.add_argument("--base-image", default=BASE_IMAGE)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--clip", type=Path, default=None, help="audio file to POST (default: a 2 s tone)")
    p.add_argument("--json", type=Path, default=None, help="write the result here too")
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE for the container (repeatable)")
    args = p.parse_args(argv)
    clip = args.clip.read_bytes() if args.clip else None
    result = measure(args.image, repeats=args.repeats, base_image=args.base_image, clip=clip, envs=args.env)
    print(format_result(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
