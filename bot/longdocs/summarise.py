"""The parts read in parallel: each one call, a few at a time, inside the gateway's limits.

At most ``concurrency`` calls run at once. A call the gateway turns away for being busy (a
429 the client's own retries did not get past, a 5xx, a timeout) goes back in the queue
after a pause, and the number running at once is halved, so a burst finds the gateway's
rate instead of hammering it; a part refused for what it holds (a content filter) is
given up alone; a refusal no other part could get past (the key, the balance) ends the
reading. Each part's notes are handed to ``on_notes`` the moment they come, before the
call's slot is let go (the caller stores them, and shows progress without waiting: a restart
re-reads none of them, and a process that dies loses only the parts in flight).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.documents.budget import cut_to_tokens
from bot.gateway.errors import GatewayError
from bot.gateway.events import ChatRequest

log = logging.getLogger(__name__)

ATTEMPTS = 4  # calls per part before it is given up
PAUSE = 2.0  # seconds before a busy part is asked again (doubled each time, or Retry-After)
MAX_TOKENS_CAP = 16_384
THINKING_ROOM = 6_000  # max_tokens beyond the notes' length: the model thinks first
FATAL = frozenset({"auth", "billing", "capability"})  # no other part would get past these


@dataclass(frozen=True, slots=True)
class PartCall:
    number: int
    document: int
    system: str
    user: str
    notes_tokens: int  # how long the notes may be


@dataclass(slots=True)
class PartNotes:
    number: int
    document: int
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    finish_reason: str = ""


@dataclass(slots=True)
class Failed:
    number: int
    document: int
    reason: str  # the gateway's sentence for the user


@dataclass(slots=True)
class SummaryOutcome:
    notes: list[PartNotes] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)


class Limiter:
    """A semaphore whose size can shrink while it is held (never below one)."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self.busy = 0
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.busy < self.size)
            self.busy += 1

    async def __aexit__(self, *exc: object) -> None:
        async with self._changed:
            self.busy -= 1
            self._changed.notify_all()

    def halve(self) -> None:
        self.size = max(1, self.size // 2)


async def read_parts(
    gateway: Any,
    calls: Sequence[PartCall],
    *,
    concurrency: int,
    on_notes: Callable[[PartNotes], Awaitable[None]],
    pause: float = PAUSE,
) -> SummaryOutcome:
    """Ask for every part's notes; returns what came and what could not be had. Raises the
    ``GatewayError`` that no part could get past (the key was refused, the balance ran out)."""
    limiter = Limiter(concurrency)
    outcome = SummaryOutcome()
    fatal: list[GatewayError] = []

    async def one(call: PartCall) -> None:
        for attempt in range(ATTEMPTS):
            if fatal:
                return
            async with limiter:
                if fatal:
                    return
                try:
                    notes = await _ask(gateway, call)
                except GatewayError as exc:
                    if exc.kind == "rate_limit":
                        limiter.halve()  # before this call's slot is let go
                    error: GatewayError | None = exc
                else:
                    error = None
                    # Kept before the slot is let go: the next part starts only once these notes
                    # are stored, so a process that dies mid-way loses only the parts in flight.
                    outcome.notes.append(notes)
                    await on_notes(notes)
            if error is None:
                return
            if error.kind in FATAL:
                fatal.append(error)
                return
            if not error.retryable or attempt == ATTEMPTS - 1:
                log.info("part %d given up: %s", call.number, error.log_message)
                outcome.failed.append(Failed(call.number, call.document, error.user_message))
                return
            wait = error.retry_after if error.retry_after is not None else pause * 2**attempt
            log.info("part %d: the gateway is busy (%s); again in %.1fs", call.number, error.kind, wait)
            await asyncio.sleep(wait)

    await asyncio.gather(*(one(call) for call in calls))
    if fatal:
        raise fatal[0]
    outcome.failed.sort(key=lambda f: f.number)
    return outcome


async def _ask(gateway: Any, call: PartCall) -> PartNotes:
    messages = [{"role": "system", "content": call.system}, {"role": "user", "content": call.user}]
    room = min(MAX_TOKENS_CAP, call.notes_tokens * 2 + THINKING_ROOM)
    reply = await gateway.complete(ChatRequest(messages=messages, max_tokens=room))
    text = (reply.text or "").strip()
    if not text and reply.finish_reason == "length" and room < MAX_TOKENS_CAP:
        # All its room went on thinking: once more with all the room there is.
        reply = await gateway.complete(ChatRequest(messages=messages, max_tokens=MAX_TOKENS_CAP))
        text = (reply.text or "").strip()
    if not text:
        raise GatewayError(
            "the model returned no notes for this part",
            f"part {call.number}: empty answer (finish {reply.finish_reason!r})",
            retryable=True,
            kind="empty",
        )
    if len(text) > call.notes_tokens * 4:  # far past the length asked for: keep the first of it
        text = cut_to_tokens(text, call.notes_tokens * 2).rsplit("\n", 1)[0]
    usage = reply.usage
    return PartNotes(
        call.number,
        call.document,
        text,
        usage.prompt_tokens if usage else 0,
        usage.completion_tokens if usage else 0,
        usage.cached_tokens if usage else 0,
        reply.finish_reason or "",
    )
