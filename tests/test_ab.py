"""`python -m loadtests.ab`: two settings served side by side, taking turns; ratios B / A per level."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.ab import parse_setting, summary

REPO = Path(__file__).resolve().parents[1]


def test_settings_are_ser_variables():
    assert parse_setting("SER_LITERT_ENGINE=interpreter,SER_BATCH_WAIT=learnt") == {
        "SER_LITERT_ENGINE": "interpreter",
        "SER_BATCH_WAIT": "learnt",
    }
    assert parse_setting("") == {}
    for bad in ("SER_X", "PATH=/tmp"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected SER_NAME=value"):
            parse_setting(bad)


def test_summary_is_the_mean_of_paired_ratios():
    runs = [
        {"side": s, "round": r, "clients": 8, "rps": rps, "p99_ms": p99, "cpu_ms_per_request": cpu}
        for s, r, rps, p99, cpu in [
            ("A", 1, 100, 10, 4),
            ("B", 1, 150, 20, 2),
            ("A", 2, 200, 10, 4),
            ("B", 2, 200, 10, 4),
        ]
    ]
    assert summary(runs) == {
        "8": {
            "rps": pytest.approx(1.25),
            "p99_ms": pytest.approx(1.5),
            "cpu_ms_per_request": pytest.approx(0.75),
        }
    }


def test_open_loop_levels_are_keyed_by_rate_after_the_closed_ones():
    row = {"round": 1, "rps": 1, "p99_ms": 1, "cpu_ms_per_request": 1}
    runs = [
        {**row, "side": side, "clients": clients, "rate": rate}
        for clients, rate in [(32, 0.0), (256, 200.0), (8, 0.0)]
        for side in "AB"
    ]
    assert list(summary(runs)) == ["32", "200/s", "8"]


def test_nothing_to_measure_is_refused():
    cmd = [sys.executable, "-m", "loadtests.ab", "--b", "SER_WORKERS=4", "--levels", ""]
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "give --levels (clients) or --rates" in run.stderr


@pytest.mark.slow
def test_a_short_ab_run_serves_both_sides(trained_store, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SER_")}
    env["BENTOML_HOME"] = str(trained_store)
    cmd = [sys.executable, "-m", "loadtests.ab", "--b", "SER_LITERT_ENGINE=interpreter", "--levels", "1,2"]
    cmd += ["--rates", "20", "--rounds", "1", "--warmup", "0.5", "--duration", "1", "--clips", "2"]
    cmd += ["--json", str(tmp_path / "ab.json")]
    run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads((tmp_path / "ab.json").read_text())
    assert result["b"] == {"SER_LITERT_ENGINE": "interpreter"} and result["a"] == {}
    assert [(r["side"], r["clients"], r["rate"]) for r in result["runs"]] == [
        ("A", 1, 0), ("B", 1, 0), ("A", 2, 0), ("B", 2, 0), ("A", 256, 20), ("B", 256, 20)
    ]  # fmt: skip
    assert all(r["rps"] > 0 and r["errors"] == 0 and r["cpu_ms_per_request"] > 0 for r in result["runs"])
    assert all(
        len(r["worker_cpu_shares"]) == 2 and sum(r["worker_cpu_shares"]) == pytest.approx(1, abs=0.01)
        for r in result["runs"]
    )
    assert list(result["summary"]) == ["1", "2", "20/s"]
    assert "c=2: B / A req/s" in run.stdout and "20/s: B / A req/s" in run.stdout
