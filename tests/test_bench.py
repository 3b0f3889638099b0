"""`make bench` end to end, small: every server starts and answers, the report is written, and the
in-process limit the target uses is the highest measured in the run (not whichever came first)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_short_bench_run_writes_its_report(tmp_path):
    out = tmp_path / "bench"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SER_")}
    cmd = [sys.executable, "-m", "loadtests.bench", "--levels", "1,4", "--warmup", "1", "--duration", "2"]
    cmd += ["--clips", "4", "--epochs", "1", "--image", "localhost/ser:no-such-image", "--out", str(out)]
    run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "in-process limit beside c=4" in run.stdout

    res = json.loads((out / "results.json").read_text())
    batched = res["configs"]["batched"]
    assert set(batched["inproc_beside"]) == {"1", "4"}
    assert all(v > 0 for v in batched["inproc_beside"].values())
    for name in ("batched", "multipart", "unbatched", "peer"):
        for level in res["configs"][name]["levels"].values():
            assert level["ok"] > 0 and level["errors"] == 0, (name, level)
    report = (out / "report.md").read_text()
    assert "| ≥ 50 % of the in-process limit |" in report
    assert set(batched["open_loop"]) == {"0.125", "0.25"}
    best = max(x["ok_rps"] for x in batched["levels"].values())
    for share, level in batched["open_loop"].items():
        assert level["rate"] == pytest.approx(float(share) * best) and level["errors"] == 0
    assert "| share | offered /s |" in report and "| 0.125 |" in report and "| 0.5 |" in report
    assert len(res["meta"]["clips"]["durations_s"]) == 4
    assert len(res["inproc"]["clip_cpu_ms"]) == 4 and min(res["inproc"]["clip_cpu_ms"]) > 0
    assert "CPU per clip alone" in report and "per second of audio" in report
    assert "Had a request at half load cost no more than at the best level" in report
    assert "| mean batch | CPU ms / request (server + load generator) |" in report
    assert "| ideal queue p99 ms |" in report and "| its single request ms |" in report  # The floor, beside.
    assert "an ideal queue:" in report and "| cores busy (of " in report
    assert all(level["cpu_ms_per_request"]["worker ser"] > 0 for level in batched["open_loop"].values())
    assert "Measured again right after each load level" in report
    assert (out / "throughput.png").stat().st_size > 0 and (out / "latency.png").stat().st_size > 0

    from loadtests.bench_report import ratios

    r = ratios(res)
    highest = max([res["inproc"]["all_cores"]["best_clips_per_s"], *batched["inproc_beside"].values()])
    assert r["inproc_limit"] == highest
    batched["inproc_beside"]["4"] = 10 * highest  # A faster moment beside one level sets the limit.
    assert ratios(res)["ours_over_inproc"] == pytest.approx(r["best_rps"] / (10 * highest))


def test_the_ideal_queue_of_each_load_uses_the_cpu_measured_at_that_load():
    """Small batches make a light-load request dearer than one at full load; the floor must use it."""
    from loadtests.bench_report import _open_loop_table, ideal_ms

    r = {"best_rps": 400.0, "single_ms": 5.0, "cores": 2, "durations_s": [1.0, 2.0, 2.0, 5.0]}

    def level(rate, worker_ms):
        return {"rate": rate, "ok_rps": rate, "p50_ms": 6, "p95_ms": 9, "p99_ms": 12,
                "cpu_ms_per_request": {"worker ser": worker_ms, "load generator": 0.5}}  # fmt: skip

    batched = {"open_loop": {"0.125": level(50.0, 6.0)}, "half_rate": level(200.0, 3.5)}
    rows = {line.split(" | ")[0]: line for line in _open_loop_table(batched, r) if line.startswith("| 0.")}
    for share, rate, cpu in (("| 0.125", 50.0, 6.5), ("| 0.5", 200.0, 4.0)):
        p99, single = ideal_ms(r, rate, cpu)
        assert f"| {cpu:.2f} | {rate * cpu / 1000:.2f} | {p99:.1f} | {single:.1f} |" in rows[share]
    assert ideal_ms(r, 200.0, 4.0)[0] > ideal_ms(r, 200.0, 3.0)[0]  # Dearer requests, longer queue.
    assert ideal_ms({**r, "durations_s": None}, 200.0, 4.0) is None  # Older runs: no floor shown.
    # Runs that measured each clip's CPU: the clips share the load's CPU as measured, not by length.
    costed = {**r, "clip_cpu_ms": [1.0, 1.2, 1.2, 3.0], "best_cpu_ms": 3.0, "best_level": 64}
    assert ideal_ms(costed, 200.0, 4.0)[1] == pytest.approx(1.2 + (4.0 - 1.6))  # The median clip's.
    assert ideal_ms(costed, 200.0, 4.0) != ideal_ms(r, 200.0, 4.0)


def test_the_report_says_what_a_server_without_batching_gains_would_face():
    from loadtests.bench_report import _no_batching_gain, ideal_ms

    r = {"half_rate": 200.0, "best_cpu_ms": 5.0, "best_level": 64, "cores": 2, "single_ms": 4.0,
         "single_p99_ms": 10.0, "durations_s": [1.0, 2.0, 2.0, 5.0],
         "clip_cpu_ms": [1.5, 2.0, 2.0, 6.0]}  # fmt: skip
    text = " ".join(_no_batching_gain(r))
    p99, single = ideal_ms(r, 200.0, 5.0)
    assert "the cores would be 0.50 busy" in text and f"**{p99 / single:.1f}×**" in text
    assert "p99 is 2.5× p50" in text and "(5 s, one request in 4) needs 3.0×" in text
    assert _no_batching_gain({**r, "clip_cpu_ms": None}) == []  # Older runs: not shown.


def test_the_report_shows_queueing_alone_on_more_cores():
    from loadtests.bench_report import CORE_COUNTS, _by_cores, ideal_ms

    r = {"half_rate": 200.0, "half_cpu_ms": 7.0, "best_cpu_ms": 5.0, "cores": 2,
         "clip_cpu_ms": [1.5, 2.0, 2.0, 6.0]}  # fmt: skip
    lines = _by_cores(r)
    assert "| cores | 0.70 busy | 0.50 busy |" in lines and "| 2 (this run) |" in " ".join(lines)
    rows = [line.split(" | ") for line in lines if line[:3] in {f"| {n}" for n in CORE_COUNTS}]
    assert len(rows) == len(CORE_COUNTS)
    busy, half = ([float(row[i].rstrip("× |")) for row in rows] for i in (1, 2))
    # More cores, shorter tail.
    assert busy == sorted(busy, reverse=True) and half == sorted(half, reverse=True)
    assert all(b > h for b, h in zip(busy, half, strict=True))  # Busier cores, longer tail.
    p99, single = ideal_ms(r, 200.0, 5.0)  # Half busy, at the best level's CPU per request.
    assert f"| 2 (this run) | {busy[1]:.1f}× | {p99 / single:.1f}× |" in lines
    assert _by_cores({**r, "clip_cpu_ms": None}) == []  # Older runs: not shown.


def test_queue_model_matches_queueing_theory():
    """M/D/1: mean wait ρ / (2μ(1 − ρ)); light load answers in the service time."""
    import numpy as np

    from loadtests.queue_model import main, sojourn_ms

    rng = np.random.default_rng(1)
    service_s, rate = 0.004, 125.0  # ρ = 0.5.
    ms = sojourn_ms(rate, np.full(200_000, service_s), 1, rng)
    rho, mu = rate * service_s, 1 / service_s
    assert ms.mean() == pytest.approx(1000 * (service_s + rho / (2 * mu * (1 - rho))), rel=0.03)
    light = main(["--rate", "1", "--service-ms", "4", "--servers", "2", "--requests", "2000"])
    assert light["p50_ms"] == light["p99_ms"] == light["single_ms"] == 4.0
    assert light["p99_over_single"] == 1.0
    pooled = main(["--rate", "240", "--service-ms", "4.4", "--servers", "2"])
    split = main(["--rate", "240", "--service-ms", "4.4", "--servers", "1", "--split", "2"])
    assert pooled["utilisation"] == split["utilisation"] == 0.528
    assert pooled["p99_ms"] < split["p99_ms"]  # One queue for both servers beats one each.


def test_the_queue_model_can_serve_the_longest_or_the_shortest_first():
    import numpy as np

    from loadtests.queue_model import main, sojourn_ms

    def run(service, order):
        return sojourn_ms(300.0, service, 2, np.random.default_rng(3), order)

    same = np.full(20_000, 0.003)
    assert np.array_equal(run(same, "longest"), run(same, "fcfs"))  # Ties go by arrival.
    mixed = np.where(np.random.default_rng(4).random(20_000) < 0.1, 0.008, 0.002)
    fcfs, longest, shortest = (run(mixed, o) for o in ("fcfs", "longest", "shortest"))
    long, short = mixed == 0.008, mixed == 0.002
    assert longest[long].mean() < fcfs[long].mean() and shortest[short].mean() < fcfs[short].mean()
    assert shortest.mean() < fcfs.mean()  # Shortest first: the least waiting on average.
    assert (fcfs >= 1000 * mixed - 1e-9).all() and (longest >= 1000 * mixed - 1e-9).all()
    with pytest.raises(ValueError, match="allowed: fcfs, longest, shortest"):
        run(mixed, "random")
    cli = main(["--rate", "200", "--service-ms", "4", "--order", "longest", "--requests", "5000"])
    assert cli["order"] == "longest"


def test_the_queue_model_shares_the_cpu_among_clips_as_measured(tmp_path):
    import numpy as np

    from loadtests.queue_model import by_cost, by_length, main

    costs = [2.0, 2.0, 2.5, 6.5]
    clips = by_cost(4.0, costs)
    assert clips.mean() == pytest.approx(4.0) and np.diff(clips) == pytest.approx(np.diff(costs))
    assert by_cost(1.0, costs) == pytest.approx(np.array(costs) / np.mean(costs))  # No room: in proportion.
    assert by_length(3.0, [1.0, 2.0, 3.0]) == pytest.approx([1.5, 3.0, 4.5])
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"inproc": {"clip_cpu_ms": costs}}))
    run = main(["--rate", "1", "--service-ms", "4", "--costs-from", str(results), "--requests", "2000"])
    assert run["single_ms"] == pytest.approx(float(np.median(clips)), abs=0.01)
    assert run["p99_ms"] == pytest.approx(clips.max(), abs=0.1)  # Unloaded: the dearest clip.
    # A run from before the costs were measured: its clips' lengths give the shape.
    results.write_text(json.dumps({"inproc": {}, "meta": {"clips": {"durations_s": [1.0, 1.0, 2.0]}}}))
    older = main(["--rate", "1", "--service-ms", "4", "--costs-from", str(results), "--requests", "2000"])
    assert older["single_ms"] == 3.0 and older["p99_ms"] == pytest.approx(6.0, abs=0.1)
    results.write_text(json.dumps({"inproc": {}}))
    with pytest.raises(SystemExit, match="neither CPU per clip nor clip lengths"):
        main(["--rate", "1", "--service-ms", "4", "--costs-from", str(results)])


def test_the_ideal_queue_is_scale_free_and_its_p99_grows_with_load():
    """What makes the ideal queue's p99 / single-request ratio a property of the load, not of the
    server's speed: twice as fast at twice the rate is the same queue on half the time scale."""
    import numpy as np

    from loadtests.queue_model import by_length, ideal_sojourn_ms, main

    lengths = (1.34, 1.56, 1.7, 1.94, 1.98, 2.04, 2.05, 2.1, 2.15, 2.33, 2.38, 2.45, 2.48, 2.51, 2.67, 5.0)

    def p99(rate, service_ms):
        return np.percentile(ideal_sojourn_ms(rate, by_length(service_ms, lengths), requests=50_000), 99)

    assert p99(742, 1.75) == pytest.approx(p99(371, 3.5) / 2, rel=1e-6)
    assert p99(0.1, 3.5) == pytest.approx(3.5 * 5.0 / np.mean(lengths), rel=1e-6)  # The longest clip.
    assert p99(93, 3.5) < p99(186, 3.5) < p99(371, 3.5)
    mixed = main(["--rate", "229", "--service-ms", "3.5", "--requests", "50000"])
    assert mixed["single_ms"] == 3.5
    assert mixed["p99_over_single"] == pytest.approx(mixed["p99_ms"] / mixed["single_ms"], abs=0.02)


def test_arrivals_closed_loop_keeps_n_clients_and_open_loop_caps_what_is_in_flight():
    """The request schedule `make bench` (loadtests.loadgen) and the soak share."""
    import asyncio
    import time

    from loadtests.loadgen import arrivals

    def run(rate, concurrency, more, service_s):
        state = {"now": 0, "most": 0, "calls": [], "drops": 0}

        async def one(i):
            state["calls"].append(i)
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
            await asyncio.sleep(service_s)
            state["now"] -= 1

        def drop():
            state["drops"] += 1

        asyncio.run(arrivals(one, rate=rate, concurrency=concurrency, more=more, on_drop=drop))
        return state

    closed = run(0.0, 3, lambda issued: issued < 9, 0.002)
    assert sorted(closed["calls"]) == list(range(1, 10)) and closed["most"] == 3 and closed["drops"] == 0
    end = time.perf_counter() + 0.3
    opened = run(1000.0, 2, lambda _: time.perf_counter() < end, 0.05)  # ~300 arrivals, 2 served at once.
    assert opened["most"] == 2 and opened["drops"] > 100 and opened["now"] == 0  # All started ended.
    assert sorted(opened["calls"]) == list(range(len(opened["calls"])))
