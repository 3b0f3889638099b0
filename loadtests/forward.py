"""Model forward throughput per runtime and batch size, one thread, each runtime in a fresh process.

    python -m loadtests.forward --model ser_lstm:latest            # a table
    python -m loadtests.forward --model ser_lstm:latest --json out.json

For each runtime (`litert` as served: LiteRT's compiled model on XNNPACK with its weight cache; its
`Interpreter` as `SER_LITERT_ENGINE=interpreter` runs it, XNNPACK from batch 32; the `Interpreter`
with built-in kernels only, or with XNNPACK at every batch size; one XNNPACK interpreter resized to
each batch, as before buckets; `keras`): seconds to import + load + run the first forward (what a
cold start pays in the model process), clips/s of ``forward`` at batch sizes 1, 4, 16, 64 on
zero-padded random inputs, each for ``--seconds``, then at a mix of batch sizes 1–16 in turn (as an
adaptive batcher forms them), and the process's peak RSS after all of it. Then whether the runtime
lets other Python run while it computes: a worker's event loop decodes and featurises the next
requests while its model thread runs a batch, so a forward that holds the GIL stalls the loop for
its whole length. ``beside_model`` is how much longer `ser.pipeline.clip_inputs` of a 2 s voiced
clip takes in one thread while another runs batches of 4 without pause than alone (1.0: no
stall; LiteRT's compiled model, as served, holds the GIL), with the model's clips/s meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

BATCHES = (1, 4, 16, 64)
RUNTIMES = ("litert", "litert-interpreter", "litert-plain", "litert-xnnpack", "litert-resizing", "keras")
# Variants of the `Interpreter` engine: where XNNPACK starts.
XNNPACK_FROM = {"litert-interpreter": 32, "litert-plain": 1 << 30, "litert-xnnpack": 1}


class ResizingRunner:
    """The runtime before batch buckets: one XNNPACK interpreter, resized whenever the batch changes."""

    def __init__(self, path: str) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=path, num_threads=1)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.batch = None

    def run(self, x):
        if len(x) != self.batch:
            self.interpreter.resize_tensor_input(self.input["index"], list(x.shape))
            self.interpreter.allocate_tensors()
            self.batch = len(x)
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"]).copy()


def _child(model: str, runtime: str, seconds: float) -> dict:
    started = time.perf_counter()
    import resource

    import numpy as np

    from ser.export import probe_inputs
    from ser.runtime import LiteRTRunner, load

    predictor = load(model, runtime.split("-")[0])
    if runtime in XNNPACK_FROM:
        path, from_ = predictor.runner.model_path, XNNPACK_FROM[runtime]
        predictor.runner = LiteRTRunner(path, xnnpack_from=from_, engine="interpreter")
    elif runtime == "litert-resizing":
        predictor.runner = ResizingRunner(predictor.runner.model_path)
    shape = predictor.spec.features.input_shape
    predictor.forward(np.zeros((1, *shape), np.float32))
    out = {"runtime": runtime, "load_s": round(time.perf_counter() - started, 2), "clips_per_s": {}}
    for n in BATCHES:
        x = probe_inputs(shape, n=n, seed=n)
        predictor.forward(x)
        done, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            predictor.forward(x)
            done += n
        out["clips_per_s"][str(n)] = round(done / (time.perf_counter() - t0))
    sizes = np.random.default_rng(0).integers(1, 17, 64)
    mixed = [probe_inputs(shape, n=int(n), seed=i) for i, n in enumerate(sizes)]
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for x in mixed:
            predictor.forward(x)
            done += len(x)
    out["clips_per_s"]["mixed"] = round(done / (time.perf_counter() - t0))
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    out["beside_model"] = beside_model(predictor, probe_inputs(shape, n=4, seed=4), seconds)
    return out


def voiced_clip(seconds: float = 2.0, sr: int = 16_000):
    """A steady voiced tone (180 Hz, 3 Hz tremolo) over faint noise: work like a real clip's."""
    import numpy as np

    t = np.arange(int(seconds * sr)) / sr
    noise = 0.01 * np.random.default_rng(0).standard_normal(len(t))
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) + noise).astype(
        "float32"
    )


def beside_model(predictor, x, seconds: float) -> dict:
    """Features of one clip, timed in this thread alone and then while another thread runs
    ``predictor.forward(x)`` back to back: the ratio of the two (1.0 when the forward lets Python
    run), and the model's clips/s meanwhile."""
    from ser.pipeline import clip_inputs

    y, config = voiced_clip(sr=predictor.spec.features.sample_rate), predictor.spec.features

    def features_s() -> float:
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 2:
            clip_inputs(y, config)
            n += 1
        return (time.perf_counter() - t0) / n

    clip_inputs(y, config)
    alone = features_s()
    stop, forwards = threading.Event(), [0]

    def model_loop():
        while not stop.is_set():
            predictor.forward(x)
            forwards[0] += 1

    thread = threading.Thread(target=model_loop)
    t0 = time.perf_counter()
    thread.start()
    beside = features_s()
    stop.set()
    thread.join()
    return {
        "features_ms_alone": round(1000 * alone, 2),
        "slowdown": round(beside / alone, 1),
        "model_clips_per_s": round(forwards[0] * len(x) / (time.perf_counter() - t0)),
    }


def measure(model: str, runtimes=RUNTIMES, seconds: float = 3.0) -> list[dict]:
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
    columns = [*map(str, BATCHES), "mixed"]
    head = "  ".join(f"batch {n:>2}" if n != "mixed" else "mix 1-16" for n in columns)
    print(f"{'runtime':<18} load+first forward (s)  {head}   (clips/s)  peak RSS (MB)  features beside it")
    for r in results:
        rates = "  ".join(f"{r['clips_per_s'][n]:>8}" for n in columns)
        b = r["beside_model"]
        print(
            f"{r['runtime']:<18} {r['load_s']:>22.2f}  {rates}  {r['peak_rss_mb']:>13}"
            f"  {b['slowdown']:>5.1f}× slower ({b['model_clips_per_s']} clips/s meanwhile)"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
