"""Even out keep-alive connections across `ser.prefork`'s workers (``SER_CONNECTION_BALANCE``).

The workers share one listening socket. When several connections arrive at once — a load
balancer or a load generator opening its pool — the worker that wakes first accepts all that are
waiting (uvloop accepts until none is left), and keep-alive then holds them there. `python -m
loadtests.ab --a SER_CONNECTION_BALANCE=off --b SER_CONNECTION_BALANCE=on --levels 2,4,8 --rounds
6` reports each worker's share of the CPU per run: off, 2 of 18 runs had one worker doing 0.96 and
0.98 of the work (111 against 201 req/s at 8 clients in the same round); on, none above 0.54.

So each worker publishes how many connections it holds in a table shared by all of them (an
anonymous shared mapping the master makes before forking), and a worker holding more than its
share answers the next request on a connection with `Connection: close`; the client reconnects,
and whichever worker accepts, the split has moved. The share is ⌈all connections / workers⌉ plus
a quarter of it: exact for few connections, where one worker short of them idles, and some slack
for many, where both are busy anyway and every reconnect costs a TCP handshake. A connection
asked to close counts as gone at once, so several requests answered at the same moment cannot
all close and overshoot the other way (without that, 32 clients on 2 workers never settled:
connections kept moving back and forth). A balanced server closes nothing; a single client is
never asked to reconnect.
"""

from __future__ import annotations

import math
import mmap

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

SLOT_BYTES = 8  # One signed 64-bit count per worker: aligned, so a write is never seen half-done.


class ConnectionTable:
    """Open connections per worker slot, shared by processes forked after it was made."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers={workers}; at least 1")
        self.workers = workers
        self._memory = mmap.mmap(-1, SLOT_BYTES * workers)  # MAP_SHARED | MAP_ANONYMOUS.
        self._counts = memoryview(self._memory).cast("q")

    def publish(self, slot: int, connections: int) -> None:
        self._counts[slot] = connections

    def counts(self) -> list[int]:
        return list(self._counts)

    def over_share(self, slot: int, mine: int) -> bool:
        """Whether ``mine`` connections in ``slot`` are more than its share of all of them."""
        total = sum(self._counts) - self._counts[slot] + mine
        even = math.ceil(total / self.workers)
        return mine > even + even // 4


class BalancedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that keeps its worker's count in the table and, over its
    share, closes the connection after answering the request at hand."""

    table: ConnectionTable | None = None  # Made by ser.prefork before the fork.
    slot = 0  # This worker's, set after the fork.
    leaving = 0  # This worker's connections asked to close and not closed yet.
    _asked_to_leave = False

    def _held(self) -> int:
        return len(self.connections) - type(self).leaving

    def _publish(self) -> None:
        if self.table is not None:
            self.table.publish(self.slot, self._held())

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._publish()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._asked_to_leave:
            self._asked_to_leave = False
            type(self).leaving -= 1
        self._publish()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        table, cycle = self.table, self.cycle
        if table is None or cycle is None or cycle.scope is not self.scope:
            return  # A WebSocket upgrade: no HTTP response to carry the close.
        if cycle.keep_alive and not self._asked_to_leave and table.over_share(self.slot, self._held()):
            cycle.keep_alive = False  # uvicorn then sends `Connection: close` and closes after it.
            self._asked_to_leave = True
            type(self).leaving += 1
            self._publish()
