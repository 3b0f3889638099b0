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
        {"side": s, "round": r, "clients": 8, "rps": rps, "cpu_ms_per_request": cpu}
        for s, r, rps, cpu in [("A", 1, 100, 4), ("B", 1, 150, 2), ("A", 2, 200, 4), ("B", 2, 200, 4)]
    ]
    assert summary(runs) == {"8": {"rps": pytest.approx(1.25), "cpu_ms_per_request": pytest.approx(0.75)}}


@pytest.mark.slow
def test_a_short_ab_run_serves_both_sides(trained_store, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SER_")}
    env["BENTOML_HOME"] = str(trained_store)
    cmd = [sys.executable, "-m", "loadtests.ab", "--b", "SER_LITERT_ENGINE=interpreter", "--levels", "1,2"]
    cmd += ["--rounds", "1", "--warmup", "0.5", "--duration", "1", "--clips", "2"]
    cmd += ["--json", str(tmp_path / "ab.json")]
    run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads((tmp_path / "ab.json").read_text())
    assert result["b"] == {"SER_LITERT_ENGINE": "interpreter"} and result["a"] == {}
    assert [(r["side"], r["clients"]) for r in result["runs"]] == [("A", 1), ("B", 1), ("A", 2), ("B", 2)]
    assert all(r["rps"] > 0 and r["errors"] == 0 and r["cpu_ms_per_request"] > 0 for r in result["runs"])
    assert all(
        len(r["worker_cpu_shares"]) == 2 and sum(r["worker_cpu_shares"]) == pytest.approx(1, abs=0.01)
        for r in result["runs"]
    )
    assert set(result["summary"]) == {"1", "2"} and "c=2: B / A req/s" in run.stdout
