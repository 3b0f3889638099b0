"""kill -9 of a server worker under load: the service recovers by itself and loses (almost) nothing.

The server runs two workers (SER_WORKERS=2) behind one listening socket. A load generator in its
own process (loadtests/soak.py `load`, 8 closed-loop clients for 20 s) posts clips to /predict;
8 s in, one worker gets SIGKILL. The requests that worker held fail (their connections die with
it); every later request goes to the surviving worker until the supervisor has started a new
one (BentoML's arbiter for `bentoml serve`; gunicorn's master for `python -m ser.prefork`, the
image's command, which forks it from the preloaded process).
Checked: < 1 % of requests fail, every request ends within its timeout, a new worker
serves and the service is ready again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import hostile
import psutil
import pytest
import requests
from helpers import REPO, SERVERS, serve

pytestmark = pytest.mark.slow

LOAD_S = 20
KILL_AT_S = 8
REQUEST_TIMEOUT_S = 60  # As the service's own SER_TIMEOUT_S.


def workers(server_pid: int, server: str) -> list[psutil.Process]:
    if server == "prefork":  # gunicorn's workers are the master's children.
        return psutil.Process(server_pid).children()
    found = []
    for p in psutil.Process(server_pid).children(recursive=True):
        try:
            cmd = p.cmdline()
        except psutil.Error:
            continue
        if "--service-name" in cmd and cmd[cmd.index("--service-name") + 1] == "ser":
            found.append(p)
    return found


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_worker_killed_under_load(server, trained_store, tmp_path):
    bodies = tmp_path / "bodies"
    bodies.mkdir()
    for i, seconds in enumerate((1.0, 1.5, 2.0, 2.5)):
        (bodies / f"{i}.wav").write_bytes(hostile.encode(hostile.tone(seconds, f0=150 + 20 * i)))
    out = tmp_path / "load.json"
    with serve(trained_store, tmp_path / "server", server=server, SER_WORKERS="2") as served:
        # Ready means one worker answers; the other may still be starting (seen once in CI).
        deadline, victims = time.monotonic() + 60, []
        while time.monotonic() < deadline and len(victims := workers(served.proc.pid, server)) < 2:
            time.sleep(0.2)
        assert len(victims) == 2, [v.cmdline() for v in victims]
        cmd = [sys.executable, "-m", "loadtests.soak", "load", "--url", f"{served.url}/predict"]
        cmd += ["--bodies", str(bodies), "--concurrency", "8", "--duration", str(LOAD_S)]
        cmd += ["--timeout", str(REQUEST_TIMEOUT_S), "--records", "--out", str(out)]
        load = subprocess.Popen(
            cmd, cwd=REPO, env={k: v for k, v in os.environ.items() if k != "SER_API_KEY"}
        )
        try:
            time.sleep(KILL_AT_S)
            assert load.poll() is None, "the load generator stopped early"
            killed_at = time.monotonic()
            os.kill(victims[0].pid, signal.SIGKILL)
            load.wait(timeout=LOAD_S + REQUEST_TIMEOUT_S + 30)
        finally:
            if load.poll() is None:
                load.kill()
        assert load.returncode == 0
        # Recovered by itself: a new worker, ready, answering.
        deadline, new = time.monotonic() + 120, []
        while time.monotonic() < deadline:
            new = [p for p in workers(served.proc.pid, server) if p.pid not in {v.pid for v in victims}]
            if new and requests.get(f"{served.url}/readyz", timeout=10).status_code == 200:
                break
            time.sleep(0.5)
        recovered_in = time.monotonic() - killed_at
        assert new, f"no new worker:\n{served.log_tail()}"
        r = requests.post(
            f"{served.url}/predict", files={"audio": ("a.wav", hostile.encode(hostile.tone()))}, timeout=30
        )
        assert r.status_code == 200, r.text[:300]
    result = json.loads(out.read_text())
    records = result.pop("records")
    summary = {**result, "recovered_in_s": round(recovered_in, 1)}
    print(f"\nkill -9 under load: {json.dumps(summary)}")
    assert result["requests"] > 100, summary
    assert all(r["t1"] is not None for r in records), "a request never completed"
    assert result["timeouts"] == 0, summary
    assert result["max_ms"] < REQUEST_TIMEOUT_S * 1000, summary
    assert result["failure_ratio"] < 0.01, summary
