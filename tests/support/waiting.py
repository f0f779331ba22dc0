"""Bounded polling: wait for a condition, fail with what was awaited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


async def wait_until(pilot: Any, cond: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """Let a Textual app run (``pilot.pause``) until ``cond()`` holds (bounded); fail with ``what`` otherwise."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await pilot.pause(0.02)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> None:
    """Sleep-poll (20 ms) until ``predicate()`` is true (bounded); fail with ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
