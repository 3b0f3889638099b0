"""BentoML's adaptive batcher started by events instead of a 1 ms poll (SER_BATCH_WAIT=none).

bentoml 1.4.39's `CorkDispatcher` runs one batch at a time; while one runs, its controller checks
the queue again every millisecond (`asyncio.sleep(TICKET_INTERVAL)`), so the next batch starts up
to 1 ms after the model is free, and the event loop wakes a thousand times a second meanwhile.
With no wait to learn (`ser.compat.no_wait_optimizer`), the rule is simply: when the model is free
and inputs are queued, run them all (up to the batch limit). `event_driven` gives one dispatcher
that rule driven by its own condition: a request arriving and a batch ending both wake it.
Everything else is the dispatcher's own: its queue, `_get_inputs` (batch limit, splitting),
`outbound_call` (the callback, results, the cost fit), and its shedding of inputs that have
waited past `max_latency` (checked on each wake, and every `SHED_CHECK_S` while inputs queue for
a busy model; an idle server has no timer running).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import types

logger = logging.getLogger(__name__)

SHED_CHECK_S = 0.05  # While the model is busy, how often inputs past max_latency are looked for.


def event_driven(dispatcher) -> None:
    """Replace ``dispatcher``'s polling controller with `_controller` (before its first call)."""
    outbound = dispatcher.outbound_call

    async def outbound_call(self, inputs_info, training: bool = False):
        try:
            await outbound(inputs_info, training)
        finally:  # `outbound` released the model's semaphore: wake the controller for the next batch.
            async with self._wake_event:
                self._wake_event.notify_all()

    dispatcher.outbound_call = types.MethodType(outbound_call, dispatcher)
    dispatcher.controller = types.MethodType(_controller, dispatcher)


def _ready(dispatcher) -> bool:
    return bool(dispatcher._queue) and not dispatcher._sema.is_locked()


async def _controller(self) -> None:
    while True:
        try:
            async with self._wake_event:
                await self._wake_event.wait_for(self._queue.__len__)  # Idle: no timer either.
                with contextlib.suppress(TimeoutError):  # Then look for inputs to shed.
                    await asyncio.wait_for(self._wake_event.wait_for(lambda: _ready(self)), SHED_CHECK_S)
            _shed(self)
            if not _ready(self):
                continue
            self._sema.acquire()
            inputs_info = tuple(self._get_inputs())
            self._loop.create_task(self.outbound_call(inputs_info))
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Error processing batch requests")


def _shed(self) -> None:
    """503 (the dispatcher's fallback) for inputs that cannot start within ``max_latency``: the
    first while others queue behind it and it would finish late, or a lone one that has waited
    that long for a busy model — BentoML's own two rules."""
    now = time.time()
    while self._queue:
        waited = now - self._queue[0].enqueue_time
        n = len(self._queue)
        late = waited + self.optimizer.o_a * n + self.optimizer.o_b >= self.max_latency
        if (n > 1 and late) or (n == 1 and self._sema.is_locked() and waited >= self.max_latency):
            self._queue.popleft().future.cancel()
            continue
        return
