"""SER_MAX_BATCH_SIZE=1 (adaptive batching off, as `make bench` compares) serves the same answers.

Without the batcher the model runs in asyncio's thread pool, one call at a time under a lock;
concurrent requests must all be answered, identically to the batched server, and /metrics then
has no batch sizes for `infer`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import hostile
import pytest
import requests
from helpers import serve

pytestmark = pytest.mark.slow


def _predict(url: str, body: bytes) -> dict:
    r = requests.post(f"{url}/predict", files={"audio": ("a.wav", body)}, timeout=60)
    assert r.status_code == 200, r.text[:300]
    return r.json()


def test_unbatched_server_answers_concurrent_requests_like_the_batched_one(trained_store, tmp_path):
    bodies = [hostile.encode(hostile.tone(1.0 + 0.25 * i, f0=140 + 15 * i)) for i in range(8)]
    answers = {}
    for name, settings in (("batched", {}), ("unbatched", {"SER_MAX_BATCH_SIZE": "1"})):
        with serve(trained_store, tmp_path / name, SER_DEMO="0", SER_WORKERS="1", **settings) as server:
            with ThreadPoolExecutor(8) as pool:
                answers[name] = list(pool.map(lambda b, u=server.url: _predict(u, b), bodies * 2))
            metrics = requests.get(f"{server.url}/metrics", timeout=30).text
            count = "bentoml_service_adaptive_batch_size_count"
            batched_lines = [
                line for line in metrics.splitlines() if line.startswith(count) and '"infer"' in line
            ]
            assert bool(batched_lines) == (name == "batched"), batched_lines
    for a, b in zip(answers["batched"], answers["unbatched"], strict=True):
        assert a["emotion"] == b["emotion"]
        for label, p in a["probabilities"].items():
            assert b["probabilities"][label] == pytest.approx(p, abs=1e-5)
