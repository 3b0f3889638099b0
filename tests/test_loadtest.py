"""Smoke test of the Locust load test: 20 s of the realistic mix against a real `bentoml serve`.

Locust runs as its own process (importing it here, after TensorFlow, breaks on gevent's patching).
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess

import pytest
from helpers import BIN, REPO, free_port, wait_ready

pytestmark = pytest.mark.slow


def test_locust_mix_passes_its_thresholds(trained_store, tmp_path):
    port, log_path = free_port(), tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SER_")}
    env.update(BENTOML_HOME=str(trained_store), BENTOML_DO_NOT_TRACK="True", TF_CPP_MIN_LOG_LEVEL="2")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [str(BIN / "bentoml"), "serve", "service:SER", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, log_path)
        load_env = {
            **env,
            "SER_LOAD_SHAPE": "step",
            "SER_LOAD_MAX_FAIL_RATIO": "0",  # Bad inputs answered as expected count as successes.
            "SER_LOAD_P95_MS": "10000",
            "SER_LOAD_CLIPS": "8",
        }
        prefix = tmp_path / "ser"
        cmd = [str(BIN / "locust"), "-f", str(REPO / "loadtests" / "locustfile.py"), "--headless"]
        cmd += ["--only-summary", "-H", url, "-u", "4", "-t", "20s", "--csv", str(prefix)]
        cmd += ["--html", str(tmp_path / "report.html")]
        run = subprocess.run(cmd, cwd=REPO, env=load_env, capture_output=True, text=True, timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
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
