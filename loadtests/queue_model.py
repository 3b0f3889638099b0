"""What an ideal server would answer: a queue (first come, first served unless ``--order``)
with ``--servers`` servers and no hand-offs, under Poisson arrivals — the floor for `make bench`'s
open-loop p99.

    python -m loadtests.queue_model --rate 240 --service-ms 4.4 --costs-from bench/results.json
    python -m loadtests.queue_model --rate 240 --service-ms 4.4 --servers 1 --split 2   # per worker

Each request needs ``--service-ms`` of one server's time on average. Requests differ by their clip:
``--costs-from RESULTS`` takes a `make bench` run's CPU per clip, each clip alone in-process
(decode + features + model), and adds the same remainder to every clip (HTTP, batching, the load
generator: ``--service-ms`` less their mean); for runs from before that was measured, it scales
the service by the clips' lengths (a cruder shape: a clip's cost is not proportional to its
length). Without it, every request needs the same. ``--split N`` sends arrivals at random to N separate queues
of ``--servers`` each (two workers that do not share a queue); ``--order longest|shortest`` has a
freed server take the waiting request needing the most (least) service instead of the first to
arrive. Prints p50/p95/p99 of the time from arrival to answer, in ms, and ``single_ms``: the same
queue's single-request time (the median clip's service time), which its p99 is compared with
(``p99_over_single``). A simulation, not a measurement: it says how much of a measured tail
queueing alone explains.
"""

from __future__ import annotations

import argparse
import heapq
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def by_length(service_ms: float, durations: Sequence[float]) -> np.ndarray:
    """Per-clip service times (ms) averaging ``service_ms``, proportional to each clip's length."""
    d = np.asarray(durations, float)
    return service_ms * d / d.mean()


def by_cost(service_ms: float, costs_ms: Sequence[float]) -> np.ndarray:
    """Per-clip service times (ms) averaging ``service_ms``: each clip's own measured cost plus one
    remainder for all (the per-request work that does not depend on the clip). Proportional to
    the costs instead when a remainder below zero would leave a clip no time."""
    c = np.asarray(costs_ms, float)
    rest = service_ms - c.mean()
    return c + rest if c.min() + rest > 0 else service_ms * c / c.mean()


ORDERS = ("fcfs", "longest", "shortest")  # Which waiting request a freed server takes next.


def sojourn_ms(
    rate: float, service: np.ndarray, servers: int, rng: np.random.Generator, order: str = "fcfs"
) -> np.ndarray:
    """Arrival → answer times (ms) for Poisson arrivals at ``rate``/s on ``servers`` servers. A freed
    server takes the first waiting request to arrive (``fcfs``), or the one needing the most
    (``longest``) or the least (``shortest``) service, ties by arrival; no request is interrupted."""
    if order not in ORDERS:
        raise ValueError(f"order {order!r}; allowed: {', '.join(ORDERS)}")
    arrivals = np.cumsum(rng.exponential(1 / rate, len(service)))
    sign = {"fcfs": 0.0, "longest": -1.0, "shortest": 1.0}[order]  # 0: the arrival order alone.
    free = [0.0] * servers
    out = np.empty(len(service))
    waiting: list[tuple[float, int]] = []
    nxt = 0
    while nxt < len(service) or waiting:
        at = heapq.heappop(free)
        if not waiting and arrivals[nxt] > at:
            at = arrivals[nxt]  # Idle until the next arrival.
        while nxt < len(service) and arrivals[nxt] <= at:
            heapq.heappush(waiting, (sign * service[nxt], nxt))
            nxt += 1
        _, i = heapq.heappop(waiting)
        heapq.heappush(free, at + service[i])
        out[i] = at + service[i] - arrivals[i]
    return 1000 * out


def ideal_sojourn_ms(
    rate: float,
    clip_ms: float | Sequence[float],
    *,
    servers: int = 2,
    split: int = 1,
    requests: int = 200_000,
    seed: int = 0,
    order: str = "fcfs",
) -> np.ndarray:
    """Arrival → answer times (ms) of ``requests`` Poisson arrivals at ``rate``/s, split at random
    over ``split`` queues of ``servers`` each, served in ``order``; each request needs the service
    time (ms) of a clip drawn at random from ``clip_ms`` (one number: every request the same)."""
    rng = np.random.default_rng(seed)
    n = requests // split
    clips = np.atleast_1d(np.asarray(clip_ms, float)) / 1000
    times = []
    for _ in range(split):
        service = clips[rng.integers(len(clips), size=n)] if len(clips) > 1 else np.full(n, clips[0])
        times.append(sojourn_ms(rate / split, service, servers, rng, order))
    return np.concatenate(times)


def single_ms(clip_ms: float | Sequence[float]) -> float:
    """An unloaded request's time in the ideal queue: the median clip's service time."""
    return float(np.median(clip_ms))


def clip_times(service_ms: float, costs_ms=None, durations=None) -> np.ndarray | None:
    """Per-clip service times averaging ``service_ms``: by each clip's measured CPU (`by_cost`)
    when given, else by the clips' lengths (`by_length`); None with neither."""
    if costs_ms:
        return by_cost(service_ms, costs_ms)
    return by_length(service_ms, durations) if durations else None


def clips_from(results: Path, service_ms: float) -> np.ndarray:
    """Per-clip service times from a `make bench` run: its CPU per clip, or its clips' lengths for
    runs from before that was measured."""
    res = json.loads(Path(results).read_text())
    clips = clip_times(
        service_ms,
        res.get("inproc", {}).get("clip_cpu_ms"),
        res.get("meta", {}).get("clips", {}).get("durations_s"),
    )
    if clips is None:
        raise SystemExit(f"{results} records neither CPU per clip nor clip lengths")
    return clips


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m loadtests.queue_model", description=__doc__.split("\n")[0])
    p.add_argument("--rate", type=float, required=True, help="mean arrivals per second")
    p.add_argument("--service-ms", type=float, required=True, help="mean service time per request")
    p.add_argument("--servers", type=int, default=2, help="servers sharing one queue")
    p.add_argument("--split", type=int, default=1, help="separate queues the arrivals are split among")
    p.add_argument("--costs-from", type=Path, metavar="RESULTS", help="a bench run's results.json")
    p.add_argument("--order", choices=ORDERS, default="fcfs", help="which waiting request goes next")
    p.add_argument("--requests", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    clip_ms = clips_from(args.costs_from, args.service_ms) if args.costs_from else args.service_ms
    ms = ideal_sojourn_ms(
        args.rate,
        clip_ms,
        servers=args.servers,
        split=args.split,
        requests=args.requests,
        seed=args.seed,
        order=args.order,
    )
    utilisation = args.rate * args.service_ms / 1000 / (args.servers * args.split)
    single = single_ms(clip_ms)
    p99 = float(np.percentile(ms, 99))
    result = {
        "rate": args.rate,
        "service_ms": args.service_ms,
        "servers": args.servers,
        "split": args.split,
        "order": args.order,
        "utilisation": round(utilisation, 3),
        **{f"p{q}_ms": round(float(np.percentile(ms, q)), 1) for q in (50, 95, 99)},
        "single_ms": round(single, 2),
        "p99_over_single": round(p99 / single, 2),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
