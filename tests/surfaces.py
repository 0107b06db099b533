"""A reply surface that records what a chat would show, for core tests.

It enforces what real platforms enforce (a length limit, no identical edit, no two writes
to one message at once) and can answer 429 on demand, so tests see what a user would see.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bot.copywriting.copy_extension import refine_controls
from bot.platform.controls import Choice, Controls, answer_controls
from bot.platform.surface import MessageRef, RateLimited, ReplySurface, SurfaceLimits, Write


@dataclass
class Shown:
    text: str = ""
    final: bool = False
    writes: int = 0
    history: list[str] = field(default_factory=list)


class RecordingSurface(ReplySurface):
    def __init__(
        self,
        *,
        max_chars: int = 4096,
        interval: float = 0.0,
        measure=len,
        rate_limit_every: int = 0,
        retry_after: float = 0.05,
    ) -> None:
        self.limits = SurfaceLimits(max_chars=max_chars, edit_interval=interval, measure=measure)
        self.messages: dict[str, Shown] = {}
        self.order: list[str] = []
        self.statuses: list[str] = []
        self.calls = 0
        self.rate_limited = 0
        self.rate_limit_every = rate_limit_every
        self.retry_after = retry_after
        self.violations: list[str] = []
        self._busy: set[str] = set()
        self.writes: list[Write] = []

    def _maybe_429(self) -> None:
        self.calls += 1
        if self.rate_limit_every and self.calls % self.rate_limit_every == 0:
            self.rate_limited += 1
            raise RateLimited(self.retry_after)

    async def post(self, text: str, write: Write) -> MessageRef:
        self._maybe_429()
        self._check(text)
        ref = MessageRef(str(len(self.order) + 1))
        self.order.append(ref.id)
        self.messages[ref.id] = Shown(text, write.final, 1, [text])
        self.writes.append(write)
        return ref

    async def edit(self, ref: MessageRef, text: str, write: Write) -> MessageRef:
        if ref.id in self._busy:
            self.violations.append(f"concurrent edit of {ref.id}")
        self._busy.add(ref.id)
        try:
            await asyncio.sleep(0)
            self._maybe_429()
            self._check(text)
            shown = self.messages[ref.id]
            if shown.text == text and shown.final == write.final:
                self.violations.append(f"identical edit of {ref.id}")
            shown.text, shown.final = text, write.final
            shown.writes += 1
            shown.history.append(text)
            self.writes.append(write)
        finally:
            self._busy.discard(ref.id)
        return ref

    async def set_status(self, status: str) -> None:
        self.statuses.append(status)

    def _check(self, text: str) -> None:
        if self.limits.measure(text) > self.limits.max_chars:
            self.violations.append(f"too long: {self.limits.measure(text)}")

    @property
    def texts(self) -> list[str]:
        return [self.messages[i].text for i in self.order]

    @property
    def transcript(self) -> str:
        return "\n\n".join(self.texts)


def variants_of(write: Write) -> int:
    """How many copy variants a write offers refinements for (one Choice per variant)."""
    return sum(1 for row in write.controls if isinstance(row, Choice))


def copy_controls(turn_id: int, variants: int = 0, language: str = "en") -> Controls:
    """What a finished copy answer shows: each variant's refinements, then the core's row."""
    return (*refine_controls(turn_id, variants, language), *answer_controls(turn_id))
