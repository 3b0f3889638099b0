"""`python -m ser.prefork`, the image's command, serves what `bentoml serve` serves.

Same answers, errors and OpenAPI document; both forked workers serve and batch (their
`worker_index` in /metrics); each runs with the service's `envs`. SIGTERM and kill -9 under load
are in test_shutdown.py and test_faults.py, for both servers.
"""

from __future__ import annotations

import concurrent.futures

import psutil
import pytest
import requests
from conftest import encode, tone
from helpers import serve

pytestmark = pytest.mark.slow

CLIPS = [(f"tone{i}.wav", encode(tone(1.0 + 0.5 * i, f0=130 + 30 * i))) for i in range(4)]


def _post(url: str, clip: tuple[str, bytes]) -> requests.Response:
    return requests.post(f"{url}/predict", files={"audio": clip}, timeout=60)


def _answers(url: str) -> dict:
    return {
        "predict": [_post(url, c).json() for c in CLIPS],
        "not_audio": _post(url, ("notes.txt", b"not audio at all" * 20)).json(),
        "docs": requests.get(f"{url}/docs.json", timeout=30).json(),
    }


def test_prefork_serves_as_bentoml_serve(trained_store, tmp_path):
    with serve(trained_store, tmp_path / "ref", SER_WORKERS="1", SER_DEMO="0") as ref:
        expected = _answers(ref.url)
    with serve(trained_store, tmp_path / "pre", server="prefork", SER_WORKERS="2", SER_DEMO="0") as pre:
        got = _answers(pre.url)
        assert got == expected
        assert expected["not_audio"]["error"]  # A 4xx body, the same from both servers.

        workers = psutil.Process(pre.proc.pid).children()
        assert len(workers) == 2, [w.cmdline() for w in workers]
        for w in workers:  # The service's envs, as `bentoml serve` gives its workers.
            env = w.environ()
            assert (env.get("OPENBLAS_NUM_THREADS"), env.get("MALLOC_ARENA_MAX")) == ("1", "2"), env

        # Enough concurrent requests that both workers serve and batch.
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(lambda i: _post(pre.url, CLIPS[i % 4]).status_code, range(200)))
        assert statuses == [200] * 200
        metrics = requests.get(f"{pre.url}/metrics", timeout=30).text
        batches = [line for line in metrics.splitlines() if "adaptive_batch_size_count{" in line]
        for index in ("1", "2"):
            assert any(f'worker_index="{index}"' in b for b in batches), (index, batches)
        assert "ser_predictions_total" in metrics
