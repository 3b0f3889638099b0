"""ser.memory: the heap-trimming thread starts on glibc and keeps running; start-up objects freeze."""

from __future__ import annotations

import gc
import platform
import time

import pytest

from ser.memory import freeze_startup_objects, trim_heap_every


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="needs glibc")
def test_trim_thread_runs():
    thread = trim_heap_every(0.01)
    assert thread is not None and thread.daemon
    time.sleep(0.05)  # Several trims.
    assert thread.is_alive()


def test_freeze_startup_objects_moves_live_objects_out_of_collection():
    kept = [object() for _ in range(10)]  # noqa: F841  (alive while frozen)
    try:
        assert freeze_startup_objects() >= 10
        assert gc.get_freeze_count() > 0
        gc.collect()  # Collections still run; frozen objects are only skipped.
    finally:
        gc.unfreeze()
