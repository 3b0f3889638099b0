"""Helpers for tests that start real servers: free ports, readiness waits, a trained store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> float:
    """Seconds until GET /readyz is 200; fails with the log's tail if the server dies or times out."""
    started = time.time()
    while time.time() - started < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return time.time() - started
        except requests.RequestException:
            pass
        time.sleep(0.25)
    raise AssertionError(f"server not ready after {timeout} s:\n{log.read_text()[-4000:]}")


def train_store(home: Path, data: Path, preset: str = "seed", epochs: int = 3) -> str:
    """Train a small model on ``data`` into the BentoML store at ``home``; returns its tag."""
    env = {**os.environ, "BENTOML_HOME": str(home), "SER_CACHE_DIR": str(home.parent / "cache")}
    out = subprocess.run(
        [
            str(BIN / "python"),
            "-m",
            "training.train",
            "--data",
            str(data),
            "--preset",
            preset,
            "--epochs",
            str(epochs),
            "--test-size",
            "28",
            "--workers",
            "1",
            "--report",
            str(home.parent / "report"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return next(line.split()[-1] for line in out.stdout.splitlines() if line.startswith("saved: "))
