"""Waiting for something another process does, with a deadline and a reason in the failure."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(what: Callable[[], bool], timeout: float, why: str) -> float:
    """Seconds until `what()` held; fails the test after `timeout` seconds, saying `why`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if what():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {why}")
