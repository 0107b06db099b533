"""Waiting in tests for something the bot does in the background: the one poll-until helper.

Prefer an event when there is one (``await adapter.drain()``, ``service.drain()``, a fake's
own wait); poll with ``eventually`` only for a state nothing announces."""

from __future__ import annotations

import asyncio
import inspect
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(
    check: Callable[[], object | Awaitable[object]],
    timeout: float = 15.0,
    *,
    every: float = 0.02,
    what: str = "condition",
) -> Any:
    """``check()``'s first truthy value, polled every ``every`` seconds; fails after ``timeout``
    seconds saying ``what`` was awaited. ``check`` may be a coroutine function (a database read,
    a fake's async query)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout} s")
        await asyncio.sleep(every)


async def settle_on_close(settle: Callable[[], Awaitable[None]]) -> None:
    """``settle()`` while a harness closes. After a failed assertion, the answer the test left
    waiting must not replace the assertion's report with a drain timeout (asyncio raises its
    TimeoutError from the cancellation, which hides the failure it interrupted)."""
    failing = sys.exc_info()[1] is not None
    try:
        await settle()
    except TimeoutError:
        if not failing:
            raise
