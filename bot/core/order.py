"""Order within a conversation: messages are stored in the order they arrived, then
answered one turn at a time by the conversation's worker.

Adapters take a ``Ticket`` the moment a message arrives (before downloading its files or
anything else slow) and hand the message over with it later. A message is stored only
after every message that arrived before it in the same conversation was stored or
dropped, so a text sent right after a photo cannot overtake it — whatever the download
takes, with no timeout standing in for order. Answering is the worker's job
(``ChatService``): it takes the stored waiting messages in sequence order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


class ArrivalOrder:
    def __init__(self) -> None:
        self._tail: dict[Hashable, asyncio.Future[None]] = {}

    def ticket(self, key: Hashable) -> Ticket:
        """Take a place in line now, at arrival (synchronously: no await before it)."""
        previous = self._tail.get(key)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tail[key] = mine
        return Ticket(self, key, previous, mine)

    def _done(self, key: Hashable, mine: asyncio.Future[None]) -> None:
        if not mine.done():
            mine.set_result(None)
        if self._tail.get(key) is mine:
            del self._tail[key]


class Ticket:
    """One message's place in its conversation's line."""

    def __init__(
        self, order: ArrivalOrder, key: Hashable, previous: asyncio.Future[None] | None, mine: asyncio.Future[None]
    ) -> None:
        self._order, self._key, self._previous, self._mine = order, key, previous, mine

    async def turn(self, store: Callable[[], Awaitable[T]]) -> T:
        """Run ``store`` once every earlier message was stored or dropped, then let the
        next message go; returns what ``store`` returned."""
        try:
            if self._previous is not None:
                await asyncio.shield(self._previous)
            return await store()
        finally:
            self._order._done(self._key, self._mine)  # noqa: SLF001 - same module

    def drop(self) -> None:
        """Give the place up without storing anything (the next in line still waits for
        everything before this one)."""
        if self._previous is None or self._previous.done():
            self._order._done(self._key, self._mine)  # noqa: SLF001
        else:
            self._previous.add_done_callback(lambda _: self._order._done(self._key, self._mine))  # noqa: SLF001
