"""ser.memory: the heap-trimming thread starts on glibc and keeps running."""

from __future__ import annotations

import platform
import time

import pytest

from ser.memory import trim_heap_every


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="needs glibc")
def test_trim_thread_runs():
    thread = trim_heap_every(0.01)
    assert thread is not None and thread.daemon
    time.sleep(0.05)  # Several trims.
    assert thread.is_alive()
