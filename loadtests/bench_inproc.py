"""The in-process limit: decode + features + the batched model (`Predictor`) on clips held in memory.

    BENTOML_HOME=... python -m loadtests.bench_inproc --model ser_lstm:latest --bodies DIR --out limit.json

One process, one thread: the model on the runtime the service uses (``SER_RUNTIME``, via
`ser.runtime.load`), pinned to ``SER_TF_THREADS`` (default 1) as in the service; no HTTP. For each
batch size, groups of clips (encoded files, as uploaded) go through ``load_audio`` and
``predict_many`` for at least ``--seconds``, in ``--rounds`` rounds; the best round of each size
counts (a limit: the least disturbed by other processes on a shared machine). Also the CPU each
clip needs alone (``clip_cpu_ms``, in file order), for the ideal queue of `loadtests.queue_model`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

TTA_SPEEDS = (0.9, 1.1)  # The copies `training.evaluate --tta speed_0.9 speed_1.1` measured (README).


def clips_per_second(step, blobs: list[bytes], batch: int, seconds: float, max_clips: int = 20_000) -> float:
    step([blobs[i % len(blobs)] for i in range(batch)])  # Warm: trace shapes, fill caches.
    n, started = 0, time.perf_counter()
    while (time.perf_counter() - started < seconds or n < 2 * batch) and n < max_clips:
        step([blobs[(n + i) % len(blobs)] for i in range(batch)])
        n += batch
    return n / (time.perf_counter() - started)


def clip_cpu_ms(step, blobs: list[bytes], reps: int = 30) -> list[float]:
    """Each clip alone (a batch of one): the median CPU time (ms) of ``step`` over ``reps`` runs.
    CPU, not wall time, so the queue model gets each clip's demand on a core; round-robin over
    the clips, so that a disturbed moment on a shared machine touches every clip's runs a little
    instead of one clip's all."""
    for blob in blobs:  # Warm: every clip's shapes.
        step([blob])
    times = np.empty((reps, len(blobs)))
    for r in range(reps):
        for i, blob in enumerate(blobs):
            t = time.process_time()
            step([blob])
            times[r, i] = time.process_time() - t
    return [round(1000 * float(ms), 3) for ms in np.median(times, axis=0)]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m loadtests.bench_inproc", description=__doc__.split("\n")[0])
    p.add_argument("--model", default="ser_lstm:latest")
    p.add_argument("--bodies", required=True, type=Path, help="folder of audio files")
    p.add_argument("--batches", default="1,8,32,64")
    p.add_argument("--seconds", type=float, default=3.0, help="measured seconds per batch size and round")
    p.add_argument("--rounds", type=int, default=2, help="rounds over all batch sizes; the best counts")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--limit-only", action="store_true", help="only the batch sizes: no prep, model or copies")
    args = p.parse_args(argv)

    from ser.audio import load_audio
    from ser.runtime import load

    predictor = load(args.model)
    blobs = [f.read_bytes() for f in sorted(args.bodies.iterdir()) if f.is_file()]

    def whole(group: list[bytes]) -> None:
        predictor.predict_many([load_audio(b) for b in group])

    def with_copies(group: list[bytes]) -> None:  # SER_TTA_SPEEDS=0.9,1.1: three inputs per clip.
        predictor.predict_many([load_audio(b) for b in group], speeds=TTA_SPEEDS)

    def prep_only(group: list[bytes]) -> None:
        for b in group:
            predictor.prepare(predictor.inputs(load_audio(b)))

    shape = predictor.spec.features.input_shape
    x64 = np.zeros((64, *shape), np.float32)
    steps = {
        "prep": (prep_only, blobs, 8),
        "forward64": (lambda _: predictor.forward(x64), [b""], 64),
        "tta64": (with_copies, blobs, 64),
    }
    if args.limit_only:
        steps.clear()
    steps.update({str(b): (whole, blobs, int(b)) for b in args.batches.split(",")})
    rates: dict[str, float] = {}
    for _ in range(args.rounds):  # Rounds over every step, best of each: a limit, robust to neighbours.
        for name, (step, data, batch) in steps.items():
            seconds = args.seconds / 2 if name in ("prep", "forward64", "tta64") else args.seconds
            rates[name] = max(rates.get(name, 0.0), clips_per_second(step, data, batch, seconds))
    result = {
        "model": predictor.tag,
        "preset": predictor.spec.preset,
        "runtime": predictor.runtime,
        "input_shape": list(shape),
        "rounds": args.rounds,
        "clips_per_s": rates,
    }
    if not args.limit_only:
        result.update(
            clip_cpu_ms=clip_cpu_ms(whole, blobs),  # In the order of the files: the bench's clips.
            prep_clips_per_s=rates.pop("prep"),
            forward_inputs_per_s_b64=rates.pop("forward64"),
            tta_speeds=list(TTA_SPEEDS),
            tta_clips_per_s_b64=rates.pop("tta64"),
        )
    best = max(result["clips_per_s"], key=result["clips_per_s"].get)
    result.update(best_batch=int(best), best_clips_per_s=result["clips_per_s"][best])
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text)
    print(text)
    return result


if __name__ == "__main__":
    main()
