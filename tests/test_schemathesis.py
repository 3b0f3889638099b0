"""Protocol fuzzing: schemathesis against the real service's OpenAPI (`/docs.json`), no 5xx allowed.

Runs the `st` CLI (schemathesis 4.x) as a subprocess against `bentoml serve`, bounded by
`--max-examples` per operation and a `--max-time` budget. The API's own operations (/predict,
/predict_batch, /timeline and the probes) are tested; the Gradio demo's routes under /ui, which
BentoML also lists in /docs.json, are excluded: they are Gradio's own API, which by design answers
a failing event handler with a 500 (see the README's reliability section).

    SER_SCHEMATHESIS_TIME=300 SER_SCHEMATHESIS_EXAMPLES=500 pytest tests/test_schemathesis.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
from helpers import BIN, serve

pytestmark = pytest.mark.slow

MAX_TIME_S = int(os.environ.get("SER_SCHEMATHESIS_TIME", "45"))
MAX_EXAMPLES = int(os.environ.get("SER_SCHEMATHESIS_EXAMPLES", "50"))


def _st() -> str:
    st = BIN / "st"
    if st.exists():
        return str(st)
    found = shutil.which("st")
    if not found:
        pytest.skip("schemathesis is not installed: pip install -e '.[dev]'")
    return found


def test_no_server_errors(trained_store, tmp_path):
    st = _st()
    report = tmp_path / "junit.xml"
    with serve(trained_store, tmp_path) as server:
        cmd = [
            st,
            "run",
            f"{server.url}/docs.json",
            "--checks",
            "not_a_server_error",
            "--exclude-path-regex",
            "^/ui",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--max-time",
            str(MAX_TIME_S),
            "--seed",
            "20260101",
            "--workers",
            "2",
            "--request-timeout",
            "30",
            "--no-color",
            "--report",
            "junit",
            "--report-junit-path",
            str(report),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=MAX_TIME_S + 120, cwd=tmp_path)
        server_errors = [line for line in server.log_tail(10_000_000).splitlines() if "(status=5" in line]
    output = done.stdout[-6000:] + done.stderr[-2000:]
    assert "Test cases:" in done.stdout, output
    failures = []
    if report.exists():
        for case in ET.parse(report).getroot().iter("testcase"):
            for problem in [*case.iter("failure"), *case.iter("error")]:
                failures.append(f"{case.get('name')}: {(problem.get('message') or problem.text or '')[:300]}")
    assert done.returncode == 0 and not failures, "\n".join(failures) + "\n" + output
    assert not server_errors, "\n".join(server_errors[:20])
