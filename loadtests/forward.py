"""Model forward throughput per runtime and batch size, one thread, each runtime in a fresh process.

    python -m loadtests.forward --model ser_lstm:latest            # a table
    python -m loadtests.forward --model ser_lstm:latest --json out.json

For each runtime (`litert`, `keras`): seconds to import + load + run the first forward (what a
cold start pays in the model process), then clips/s of ``forward`` at batch sizes 1, 4, 16, 64 on
zero-padded random inputs, each for ``--seconds``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BATCHES = (1, 4, 16, 64)


def _child(model: str, runtime: str, seconds: float) -> dict:
    started = time.perf_counter()
    import numpy as np

    from ser.export import probe_inputs
    from ser.runtime import load

    predictor = load(model, runtime)
    shape = predictor.spec.features.input_shape
    predictor.forward(np.zeros((1, *shape), np.float32))
    out = {"runtime": predictor.runtime, "load_s": round(time.perf_counter() - started, 2), "clips_per_s": {}}
    for n in BATCHES:
        x = probe_inputs(shape, n=n, seed=n)
        predictor.forward(x)
        done, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            predictor.forward(x)
            done += n
        out["clips_per_s"][str(n)] = round(done / (time.perf_counter() - t0))
    return out


def measure(model: str, runtimes=("litert", "keras"), seconds: float = 3.0) -> list[dict]:
    results = []
    for runtime in runtimes:
        env = {**os.environ, "SER_TF_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
        code = (
            "import json; from loadtests.forward import _child; "
            f"print(json.dumps(_child({model!r}, {runtime!r}, {seconds})))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
        )
        if out.returncode != 0:
            raise RuntimeError(f"{runtime}: {out.stderr[-2000:]}")
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m loadtests.forward", description=__doc__.split("\n")[0])
    p.add_argument("--model", default="ser_lstm:latest")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    results = measure(args.model, seconds=args.seconds)
    print("runtime  load+first forward (s)  " + "  ".join(f"batch {n:>2}" for n in BATCHES) + "   (clips/s)")
    for r in results:
        rates = "  ".join(f"{r['clips_per_s'][str(n)]:>8}" for n in BATCHES)
        print(f"{r['runtime']:<8} {r['load_s']:>22.2f}  {rates}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
