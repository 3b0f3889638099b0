"""Helpers for tests that start real servers: free ports, readiness waits, a trained store."""

from __future__ import annotations

import contextlib
import http.client
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SERVERS = {
    "bentoml": [str(BIN / "bentoml"), "serve", "service:SER"],
    "prefork": [str(BIN / "python"), "-m", "ser.prefork", "service:SER"],
}


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


class Served:
    """A running server of service:SER (see `serve`)."""

    def __init__(self, url: str, proc: subprocess.Popen, log: Path, tmpdir: Path):
        self.url, self.proc, self.log, self.tmpdir = url, proc, log, tmpdir

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@contextlib.contextmanager
def serve(
    home: Path, workdir: Path, timeout: float = 180, server: str = "bentoml", **settings: str
) -> Iterator[Served]:
    """Serve ``home``'s model on a free port with ``settings`` (SER_* variables; the caller's are
    dropped) and a private TMPDIR; stopped (SIGTERM, then SIGKILL, process group) on exit.
    ``server``: ``bentoml`` (`bentoml serve service:SER`) or ``prefork`` (`python -m ser.prefork`,
    the image's command).

    The TMPDIR is short (/tmp/ser-XXXX): BentoML puts its services' Unix sockets there, and a
    socket path is limited to 108 bytes."""
    port, log = free_port(), workdir / "serve.log"
    workdir.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix="ser-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SER_")}
    env.update(
        BENTOML_HOME=str(home),
        BENTOML_DO_NOT_TRACK="True",
        TF_CPP_MIN_LOG_LEVEL="2",
        TMPDIR=str(tmpdir),
        **settings,
    )
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*SERVERS[server], "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, log, timeout)
        yield Served(url, proc, log, tmpdir)
    finally:
        stop(proc)
        shutil.rmtree(tmpdir, ignore_errors=True)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group, SIGKILL after 15 s."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


def send_whole_requests(
    url: str, files: dict | None, n: int, data: bytes | None = None, headers: dict | None = None
) -> list[http.client.HTTPConnection]:
    """``n`` POSTs of ``files`` (a multipart form) or ``data`` (the body, with ``headers``) to
    ``url``, each connected and completely sent before this returns.

    For tests that signal a server with requests in flight: a client thread still connecting when
    the listener closes would be refused, rightly, and say nothing about the requests in flight.
    And for tests of batching: the requests reach the server together, whatever the client's speed.
    """
    request = requests.Request("POST", url, files=files, data=data, headers=headers).prepare()
    parts = urllib.parse.urlsplit(url)
    connections = [http.client.HTTPConnection(parts.hostname, parts.port, timeout=60) for _ in range(n)]
    for conn in connections:
        conn.request("POST", parts.path, body=request.body, headers=dict(request.headers))
    time.sleep(0.2)  # Let the server's event loops accept what the kernel has queued.
    return connections


def answered(connections: list[http.client.HTTPConnection]) -> int:
    """How many of ``connections`` have a response waiting now."""
    ready, _, _ = select.select([c.sock for c in connections], [], [], 0)
    return len(ready)


def response_status(conn: http.client.HTTPConnection) -> int:
    """Wait for ``conn``'s response; its status (the body is read and the connection closed)."""
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status
