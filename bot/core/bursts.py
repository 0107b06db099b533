"""Bursts: a file sent without text and the same person's text right after it (or text,
then files) are one question. Each arrival takes a ``Slot`` at once (before any await, like
its place in line); the slot says whether the message just before it in the conversation
was the same person's within the window with nobody in between, and, once that message
was stored, which stored row it went into — so the later message can join that row.

The hold is the worker's (``ChatService``): a stored files-only message waits for its
follower's outcome, up to the window from its arrival; a text is answered at once, and
files that follow join it while its answer shows no text yet (the turn asks again).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Stored:
    """The user message (row) a message was stored in, or joined."""

    conversation_id: int
    message_id: int
    seq: int
    files_only: bool  # the row holds files and no text yet: it waits for a follower
    addressed: bool  # the row waits for an answer (else it is context)


@dataclass(eq=False)
class Slot:
    """One message's place in its conversation's burst."""

    key: Hashable
    author: str
    at: float  # arrival, on the ``Bursts`` clock
    deadline: float  # the latest arrival a follower may have to join this message
    previous: Slot | None = None  # the same author's message just before, within the window
    next: asyncio.Future[Slot | None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # stored, joined or dropped
    stored: Stored | None = None
    joined: bool = False  # it joined the message before it (not a row of its own)
    passed: bool = False  # no message after all (a redelivery): the burst goes on past it

    def settle(self, stored: Stored | None = None) -> None:
        """This message was stored in (or joined) ``stored``; None: it was dropped."""
        if not self.settled.is_set():
            self.stored = stored
            self.previous = None  # a long burst must not keep every earlier slot alive
            self.settled.set()

    def pass_over(self, bursts: Bursts) -> None:
        """This arrival was no message (a redelivery): the burst goes on as if it never
        came — it is taken out of the chain between the message before it and the one after."""
        before, self.passed = self.previous, True
        if before is not None:
            loop = asyncio.get_running_loop()
            before.next = loop.create_future()
            if not self.next.done():  # nothing came after it yet
                if bursts.forget(self):
                    bursts.reopen(before)
                else:
                    before.end()
            elif (after := self.next.result()) is not None and after.at <= before.deadline:
                after.previous = before
                before.next.set_result(after)
            else:
                before.end()
        self.settle()  # last: a worker waiting on this slot wakes to the relinked chain

    def end(self) -> None:
        """Nobody joins this message any more."""
        if not self.next.done():
            self.next.set_result(None)

    async def follower(self, clock: Callable[[], float]) -> Slot | None:
        """The same author's next message, if it arrives before the deadline and nobody
        else's comes first; returns once it is settled (stored, joined or dropped)."""
        try:
            nxt = await asyncio.wait_for(asyncio.shield(self.next), timeout=max(0.0, self.deadline - clock()))
        except TimeoutError:
            return None
        if nxt is not None:
            await nxt.settled.wait()
        return nxt


class Bursts:
    """Per conversation key, the latest arrival."""

    def __init__(self, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self._last: dict[Hashable, Slot] = {}

    @property
    def open(self) -> int:
        """Conversations whose latest message may still be joined (within its window)."""
        return len(self._last)

    def arrive(self, key: Hashable, author: str) -> Slot:
        """A message from ``author`` arrived in ``key`` (synchronously: no await before it)."""
        now = self.clock()
        slot = Slot(key, author, now, now + self.window)
        before = self._last.get(key)
        if before is not None:
            if before.author == author and now <= before.deadline and not before.next.done():
                slot.previous = before
                before.next.set_result(slot)
            else:
                before.end()  # someone else spoke, or too late: the burst is over
        self._last[key] = slot
        # Forget the slot once nobody can join it (no slot outlives its window for long).
        asyncio.get_running_loop().call_later(self.window, self._expire, slot)
        return slot

    def forget(self, slot: Slot) -> bool:
        """Drop ``slot`` as its conversation's latest arrival (False: a later one came)."""
        if self._last.get(slot.key) is not slot:
            return False
        del self._last[slot.key]
        return True

    def reopen(self, slot: Slot) -> None:
        """``slot`` is its conversation's latest arrival again (the one after it passed over)."""
        if slot.key not in self._last and self.clock() <= slot.deadline:
            self._last[slot.key] = slot
        else:
            slot.end()

    def _expire(self, slot: Slot) -> None:
        slot.end()
        if self._last.get(slot.key) is slot:
            del self._last[slot.key]
