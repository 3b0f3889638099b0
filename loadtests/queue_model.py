"""What an ideal server would answer: a first-come-first-served queue with ``--servers`` servers
and no hand-offs, under Poisson arrivals — the floor for `make bench`'s open-loop p99.

    python -m loadtests.queue_model --rate 240 --service-ms 4.4 --servers 2
    python -m loadtests.queue_model --rate 240 --service-ms 4.4 --servers 1 --split 2   # per worker

Each request needs ``--service-ms`` of one server's time, scaled by its clip's duration when
``--durations`` is given (the bench's clips: their service time is ~proportional to length).
``--split N`` sends arrivals at random to N separate queues of ``--servers`` each (two workers
that do not share a queue). Prints p50/p95/p99 of the time from arrival to answer, in ms, and
``single_ms``: the same queue's single-request time (the median clip's service time), which its
p99 is compared with (``p99_over_single``).
A simulation, not a measurement: it says how much of a measured tail queueing alone explains.
"""

from __future__ import annotations

import argparse
import heapq
import json

import numpy as np

# The lengths (s) of `make bench`'s 16 TESS clips (`results.json` → meta.clips.durations_s).
BENCH_CLIP_S = (1.34, 1.56, 1.62, 1.67, 1.9, 1.94, 1.98, 1.98, 2.0, 2.1, 2.15, 2.37, 2.48, 2.51, 2.6, 5.0)


def sojourn_ms(rate: float, service: np.ndarray, servers: int, rng: np.random.Generator) -> np.ndarray:
    """Arrival → answer times (ms) of FCFS with ``servers`` servers for Poisson arrivals at ``rate``/s."""
    arrivals = np.cumsum(rng.exponential(1 / rate, len(service)))
    free = [0.0] * servers
    out = np.empty(len(service))
    for i, (t, s) in enumerate(zip(arrivals, service, strict=True)):
        start = max(t, heapq.heappop(free))
        heapq.heappush(free, start + s)
        out[i] = start + s - t
    return 1000 * out


def ideal_sojourn_ms(
    rate: float,
    service_ms: float,
    durations: tuple[float, ...] | None = None,
    *,
    servers: int = 2,
    split: int = 1,
    requests: int = 200_000,
    seed: int = 0,
) -> np.ndarray:
    """Arrival → answer times (ms) of ``requests`` Poisson arrivals at ``rate``/s, split at random
    over ``split`` FCFS queues of ``servers`` each; each request needs ``service_ms`` on average,
    scaled by the length of a clip drawn from ``durations`` when given."""
    rng = np.random.default_rng(seed)
    n = requests // split
    scale = np.array(durations) / np.mean(durations) if durations else None
    times = []
    for _ in range(split):
        service = np.full(n, service_ms / 1000)
        if scale is not None:
            service *= scale[rng.integers(len(scale), size=n)]
        times.append(sojourn_ms(rate / split, service, servers, rng))
    return np.concatenate(times)


def single_ms(service_ms: float, durations: tuple[float, ...] | None = None) -> float:
    """An unloaded request's time in the ideal queue: the median clip's service time."""
    return service_ms * float(np.median(durations) / np.mean(durations)) if durations else service_ms


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m loadtests.queue_model", description=__doc__.split("\n")[0])
    p.add_argument("--rate", type=float, required=True, help="mean arrivals per second")
    p.add_argument("--service-ms", type=float, required=True, help="mean service time per request")
    p.add_argument("--servers", type=int, default=2, help="servers sharing one queue")
    p.add_argument("--split", type=int, default=1, help="separate queues the arrivals are split among")
    p.add_argument("--durations", action="store_true", help="scale service by the bench clips' lengths")
    p.add_argument("--requests", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    durations = BENCH_CLIP_S if args.durations else None
    ms = ideal_sojourn_ms(
        args.rate,
        args.service_ms,
        durations,
        servers=args.servers,
        split=args.split,
        requests=args.requests,
        seed=args.seed,
    )
    utilisation = args.rate * args.service_ms / 1000 / (args.servers * args.split)
    single = single_ms(args.service_ms, durations)
    p99 = float(np.percentile(ms, 99))
    result = {
        "rate": args.rate,
        "service_ms": args.service_ms,
        "servers": args.servers,
        "split": args.split,
        "utilisation": round(utilisation, 3),
        **{f"p{q}_ms": round(float(np.percentile(ms, q)), 1) for q in (50, 95, 99)},
        "single_ms": round(single, 2),
        "p99_over_single": round(p99 / single, 2),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
