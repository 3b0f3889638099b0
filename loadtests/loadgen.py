"""A small HTTP load generator (asyncio + aiohttp) for the benchmark, run as its own process.

    python -m loadtests.loadgen --url http://127.0.0.1:3000/predict --bodies DIR --concurrency 32 \\
        --warmup 3 --duration 15 --out level.json
    python -m loadtests.loadgen ... --rate 40      # open loop: Poisson arrivals at 40/s

Closed loop (default): ``--concurrency`` clients, each posting the next file as soon as its last
answer arrives. Open loop (``--rate``): arrivals at random (exponential) intervals whatever the
answers, at most ``--concurrency`` in flight (an arrival over that is counted as dropped).
Each body is a file of ``--bodies`` posted as multipart field ``--field``, in turn (``--raw``: the
file itself as the body, with its audio Content-Type, as ser/raw_upload.py accepts). Only requests
that end inside the measured window (after ``--warmup``, for ``--duration`` s) count. Bounded:
nothing new starts after the window or beyond ``--max-requests``; each request has ``--timeout``.
Prints (or writes to ``--out``) JSON: requests, rps, status codes, errors and latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import numpy as np

from loadtests.clips import multipart, raw_body


def summarise(records: list[tuple[float, float, int]], window: tuple[float, float], dropped: int) -> dict:
    start, end = window
    inside = [(t1 - t0, status) for t0, t1, status in records if start <= t1 <= end]
    ms = np.array([1000 * lat for lat, _ in inside]) if inside else np.zeros(1)
    codes = Counter(str(status) for _, status in inside)
    ok = codes.get("200", 0)
    return {
        "requests": len(inside),
        "ok": ok,
        "errors": len(inside) - ok,
        "codes": dict(codes),
        "dropped": dropped,
        "rps": len(inside) / (end - start),
        "ok_rps": ok / (end - start),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "max_ms": float(ms.max()),
    }


async def arrivals(
    one: Callable[[int], Awaitable[None]],
    *,
    rate: float,
    concurrency: int,
    more: Callable[[int], bool],
    on_drop: Callable[[], None],
) -> None:
    """Await ``one(i)`` for numbered requests while ``more(issued)``: closed loop, ``concurrency``
    clients each starting the next as its last ends; or, with ``rate``, Poisson arrivals (seeded:
    the same schedule every run) whatever the answers, at most ``concurrency`` in flight, calling
    ``on_drop()`` for an arrival over that. Returns when every request started has ended."""
    issued = 0
    if rate:
        rng = random.Random(0)
        in_flight: set[asyncio.Task] = set()
        next_at = time.perf_counter()
        while more(issued):
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            next_at += rng.expovariate(rate)
            if len(in_flight) >= concurrency:
                on_drop()
                continue
            task = asyncio.create_task(one(issued))
            issued += 1
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)
        return

    async def client() -> None:
        nonlocal issued
        while more(issued):
            issued += 1
            await one(issued)

    await asyncio.gather(*(client() for _ in range(concurrency)))


async def run(args: argparse.Namespace) -> dict:
    files = sorted(p for p in Path(args.bodies).iterdir() if p.is_file())
    if args.raw:
        bodies = [raw_body(p.name, p.read_bytes()) for p in files]
    else:
        bodies = [multipart(args.field, [(p.name, p.read_bytes())]) for p in files]
    records: list[tuple[float, float, int]] = []
    cpu_start = time.process_time()
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    t_start = time.perf_counter()
    window = (t_start + args.warmup, t_start + args.warmup + args.duration)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(i: int) -> None:
            data, content_type = bodies[i % len(bodies)]
            t0 = time.perf_counter()
            try:
                async with session.post(args.url, data=data, headers={"Content-Type": content_type}) as r:
                    await r.read()
                    status = r.status
            except TimeoutError:
                status = -1  # Our timeout.
            except aiohttp.ClientError:
                status = 0  # Connection refused or reset.
            records.append((t0, time.perf_counter(), status))

        dropped = 0

        def drop() -> None:
            nonlocal dropped
            dropped += time.perf_counter() >= window[0]

        def more(issued: int) -> bool:
            return time.perf_counter() < window[1] and issued < args.max_requests

        await arrivals(one, rate=args.rate, concurrency=args.concurrency, more=more, on_drop=drop)
    result = summarise(records, window, dropped)
    result.update(concurrency=args.concurrency, rate=args.rate, duration_s=args.duration, url=args.url)
    result.update(all_requests=len(records), loadgen_cpu_s=time.process_time() - cpu_start)
    return result


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m loadtests.loadgen", description=__doc__.split("\n")[0])
    p.add_argument("--url", required=True, help="full URL to POST to, e.g. http://127.0.0.1:3000/predict")
    p.add_argument("--bodies", required=True, type=Path, help="folder of audio files to send in turn")
    p.add_argument("--field", default="audio", help="multipart field name")
    p.add_argument("--raw", action="store_true", help="post each file as the body, not a multipart form")
    p.add_argument("--concurrency", type=int, default=8, help="clients (closed loop) or in-flight cap")
    p.add_argument("--rate", type=float, default=0.0, help="open loop: mean arrivals per second")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds not measured at the start")
    p.add_argument("--duration", type=float, default=15.0, help="seconds measured")
    p.add_argument("--max-requests", type=int, default=200_000)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    result = asyncio.run(run(args))
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)
    return result


if __name__ == "__main__":
    main()
