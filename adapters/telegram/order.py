"""Keep one chat's messages in arrival order on their way to the core.

Updates are processed concurrently (downloads take different times), so without this a
text sent right after a photo could reach the core first. Each message waits until the
one before it in the same conversation has been handed to the core, then goes itself;
the core queues it if an answer is running.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable


class ArrivalOrder:
    def __init__(self) -> None:
        self._tail: dict[Hashable, asyncio.Future[None]] = {}

    def ticket(self, key: Hashable) -> "Ticket":
        """Take a place in line now (at arrival), before any slow preparation."""
        loop = asyncio.get_running_loop()
        previous = self._tail.get(key)
        mine: asyncio.Future[None] = loop.create_future()
        self._tail[key] = mine
        return Ticket(self, key, previous, mine)

    def _release(self, key: Hashable, mine: asyncio.Future[None]) -> None:
        if not mine.done():
            mine.set_result(None)
        if self._tail.get(key) is mine:
            del self._tail[key]


class Ticket:
    def __init__(self, order: ArrivalOrder, key: Hashable, previous: asyncio.Future[None] | None,
                 mine: asyncio.Future[None]) -> None:
        self._order, self._key, self._previous, self._mine = order, key, previous, mine

    async def run(self, handle: Callable[[], Awaitable[None]]) -> None:
        """Start ``handle`` after the previous message's, then wait for it to return."""
        try:
            if self._previous is not None:
                await asyncio.shield(self._previous)
            task = asyncio.ensure_future(handle())
            # Let the core take the message (store it, join the queue) before the next one.
            await asyncio.wait({task}, timeout=0.5)
        finally:
            self._order._release(self._key, self._mine)
        await task

    def cancel(self) -> None:
        """Give up the place without handing anything over (the next in line still waits
        for everything before this one)."""
        if self._previous is None or self._previous.done():
            self._order._release(self._key, self._mine)
        else:
            self._previous.add_done_callback(lambda _: self._order._release(self._key, self._mine))
