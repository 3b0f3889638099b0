"""SIGTERM under load: in-flight requests are answered and the server exits within 5 s.

Both servers: `bentoml serve` and `python -m ser.prefork` (the image's command)."""

from __future__ import annotations

import concurrent.futures
import signal
import time

import pytest
import requests
from conftest import encode, tone
from helpers import SERVERS, answered, response_status, send_whole_requests, serve

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_sigterm_answers_in_flight_requests_and_exits_quickly(server, trained_store, tmp_path):
    with serve(trained_store, tmp_path, server=server) as served:
        url, proc = served.url, served.proc
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
    assert answered_before < 8, "every request was answered before SIGTERM: nothing was in flight"
    assert statuses == [200] * 8, statuses
    assert exited_in < 5.0, f"exited {exited_in:.1f} s after SIGTERM"
