"""Smoke test of the Locust load test: 20 s of the realistic mix against a real `bentoml serve`.

Locust runs as its own process (importing it here, after TensorFlow, breaks on gevent's patching).
"""

from __future__ import annotations

import csv
import os
import subprocess

import pytest
from helpers import BIN, REPO, serve

pytestmark = pytest.mark.slow


def test_locust_mix_passes_its_thresholds(trained_store, tmp_path):
    with serve(trained_store, tmp_path) as server:
        load_env = {k: v for k, v in os.environ.items() if not k.startswith("SER_")}
        load_env.update(
            SER_LOAD_SHAPE="step",
            SER_LOAD_MAX_FAIL_RATIO="0",  # Bad inputs answered as expected count as successes.
            SER_LOAD_P95_MS="10000",
            SER_LOAD_CLIPS="8",
        )
        prefix = tmp_path / "ser"
        cmd = [str(BIN / "locust"), "-f", str(REPO / "loadtests" / "locustfile.py"), "--headless"]
        cmd += ["--only-summary", "-H", server.url, "-u", "4", "-t", "20s", "--csv", str(prefix)]
        cmd += ["--html", str(tmp_path / "report.html")]
        run = subprocess.run(cmd, cwd=REPO, env=load_env, capture_output=True, text=True, timeout=120)
    output = run.stdout[-3000:] + run.stderr[-3000:]
    assert run.returncode == 0, output
    assert "thresholds met" in run.stderr, output

    with open(f"{prefix}_stats.csv", newline="") as f:
        rows = {row["Name"]: row for row in csv.DictReader(f)}
    total = rows["Aggregated"]
    assert int(total["Request Count"]) > 20, total
    assert int(total["Failure Count"]) == 0, output
    names = set(rows)
    assert {"/predict", "/predict [body]", "/predict_batch", "/timeline"} <= names, names
    assert any(name.startswith("/predict [bad:") for name in names), names
    assert (tmp_path / "report.html").stat().st_size > 10_000
