"""Process helpers for the benchmark: start and stop servers, cold starts, RSS, metrics, load runs."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
OPEN_LOOP_CAP = 256  # Requests in flight at most under open-loop (Poisson) arrivals.


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], env: dict, log: Path, cwd: Path = REPO) -> subprocess.Popen:
    """Start ``cmd`` in its own process group (so stop() reaches its workers), output to ``log``."""
    with open(log, "w") as f:
        return subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(proc: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM to the process group, SIGKILL after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def first_prediction(url: str, body: tuple[bytes, str], alive, timeout: float = 240, since=None) -> float:
    """Seconds from ``since`` (perf_counter; default now) until POST ``url`` answers 200.

    ``alive()`` turning False or the timeout raises RuntimeError.
    """
    started = time.perf_counter() if since is None else since
    data, content_type = body
    while time.perf_counter() - started < timeout:
        if not alive():
            raise RuntimeError("server exited before answering")
        try:
            r = requests.post(url, data=data, headers={"Content-Type": content_type}, timeout=30)
            if r.status_code == 200:
                return time.perf_counter() - started
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no answered prediction within {timeout:.0f} s")


def _role(p: psutil.Process) -> str:
    cmd = " ".join(p.cmdline())
    m = re.search(r"--service-name (\S+)", cmd)
    if m:
        return f"worker {m.group(1)}"
    if "ser.prefork" in cmd:
        return "ser.prefork"
    if "gunicorn" in cmd:
        return "gunicorn"
    if "bentoml" in cmd and " serve" in cmd:
        return "bentoml serve (arbiter)"
    return p.name()


def rss_tree(pid: int) -> list[dict]:
    """RSS (MB) of a process and all its descendants, with a role for each."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
    out = []
    for p in procs:
        try:
            out.append({"pid": p.pid, "role": _role(p), "rss_mb": round(p.memory_info().rss / 2**20, 1)})
        except psutil.NoSuchProcess:
            continue
    if out and out[0]["role"] == "ser.prefork":  # Forked workers carry their master's command line.
        out[0]["role"] = "ser.prefork (master)"
        for o in out[1:]:
            o["role"] = "worker ser" if o["role"] == "ser.prefork" else o["role"]
    if out and out[0]["role"] == "gunicorn":
        out[0]["role"] = "gunicorn (master)"
        for o in out[1:]:
            o["role"] = "gunicorn worker" if o["role"] == "gunicorn" else o["role"]
    return out


def cpu_by_process(pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) used so far by each process of a tree: {pid: (role, seconds)}."""
    out = {}
    for row in rss_tree(pid):
        try:
            t = psutil.Process(row["pid"]).cpu_times()
        except psutil.NoSuchProcess:
            continue
        out[row["pid"]] = (row["role"], t.user + t.system)
    return out


def cpu_by_role(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far by a process tree, summed per role."""
    out: dict[str, float] = {}
    for role, seconds in cpu_by_process(pid).values():
        out[role] = out.get(role, 0.0) + seconds
    return out


def metric_sum(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if m and all(
            dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or "")).get(k) == v for k, v in labels.items()
        ):
            total += float(m.group(2))
    return total


def batch_counts(base_url: str) -> tuple[float, float]:
    """(inputs, batches) the model service's `infer` dispatcher has run so far."""
    text = requests.get(f"{base_url}/metrics", timeout=30).text
    return (
        metric_sum(text, "bentoml_service_adaptive_batch_size_sum", method_name="infer"),
        metric_sum(text, "bentoml_service_adaptive_batch_size_count", method_name="infer"),
    )


def load(
    url: str,
    bodies: Path,
    out: Path,
    *,
    concurrency: int,
    warmup: float,
    duration: float,
    rate=0.0,
    raw: bool = False,
) -> dict:
    """One bounded run of `loadtests.loadgen` in its own process; its JSON result (``raw``: each
    file as the request body, else a multipart form)."""
    cmd = [str(BIN / "python"), "-m", "loadtests.loadgen", "--url", url, "--bodies", str(bodies)]
    cmd += ["--concurrency", str(concurrency), "--warmup", str(warmup), "--duration", str(duration)]
    cmd += ["--rate", str(rate), "--out", str(out), *(["--raw"] if raw else [])]
    subprocess.run(cmd, cwd=REPO, check=True, timeout=warmup + duration + 120)
    return json.loads(out.read_text())
