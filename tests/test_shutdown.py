"""SIGTERM under load: in-flight requests are answered and the server exits within 5 s.

Both servers: `bentoml serve` and `python -m ser.prefork` (the image's command)."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import time

import pytest
import requests
from conftest import encode, tone
from helpers import REPO, SERVERS, answered, free_port, response_status, send_whole_requests, wait_ready

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_sigterm_answers_in_flight_requests_and_exits_quickly(server, trained_store, tmp_path):
    port, log_path = free_port(), tmp_path / "serve.log"
    env = {**os.environ, "BENTOML_HOME": str(trained_store), "BENTOML_DO_NOT_TRACK": "True"}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [*SERVERS[server], "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, log_path)
        # 60 s timelines take ~0.25 s each here: 8 of them keep 2 workers busy for ~1 s.
        clip = ("long.wav", encode(tone(60.0)))
        assert requests.post(f"{url}/timeline", files={"audio": clip}, timeout=60).status_code == 200
        connections = send_whole_requests(f"{url}/timeline", {"audio": clip}, 8)
        answered_before = answered(connections)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(response_status, conn) for conn in connections]
            started = time.time()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            exited_in = time.time() - started
            statuses = [f.result() for f in futures]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert answered_before < 8, "every request was answered before SIGTERM: nothing was in flight"
    assert statuses == [200] * 8, statuses
    assert exited_in < 5.0, f"exited {exited_in:.1f} s after SIGTERM"
