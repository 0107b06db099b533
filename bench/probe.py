"""Timestamps of one answer: when the core got its first visible token, when the surface
was first written, and whether the chat ended showing the whole answer.

The core is measured from outside: ``instrument`` wraps the runtime's gateway client so
the first visible ``TextDelta`` handed to the core is stamped on the probe of the
conversation whose task is iterating (a context variable, set per conversation), and
``BenchSurface`` stamps its own writes.
"""

from __future__ import annotations

import contextvars
import io
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from adapters.console.surface import ConsoleSurface, PlainDisplay
from bot.gateway.events import TextDelta
from bot.platform.surface import MessageRef, Write

now = time.perf_counter


@dataclass(slots=True)
class Probe:
    expected: str
    first_delta: float | None = None  # the core received the first visible text
    first_write: float | None = None  # the surface was first written
    final_at: float | None = None
    writes: int = 0
    exact: bool = False  # the final text is exactly the model's answer

    @property
    def added_latency(self) -> float | None:
        if self.first_delta is None or self.first_write is None:
            return None
        return self.first_write - self.first_delta


CURRENT: contextvars.ContextVar[Probe | None] = contextvars.ContextVar("bench_probe", default=None)


class StreamCounter:
    """How many answers are streaming from the gateway right now, and the most at once."""

    def __init__(self) -> None:
        self.active = 0
        self.peak = 0

    def reset(self) -> None:
        self.active = self.peak = 0


def instrument(gateway: object, counter: StreamCounter) -> None:
    """Stamp the first visible text delta of each answer (whitespace-only deltas before
    the answer are skipped by the core, so they are skipped here too)."""
    original = gateway.stream  # type: ignore[attr-defined]

    async def stream(request: object) -> AsyncIterator[object]:
        probe = CURRENT.get()
        counter.active += 1
        counter.peak = max(counter.peak, counter.active)
        try:
            async for event in original(request):
                if probe is not None and probe.first_delta is None and type(event) is TextDelta and event.text.strip():
                    probe.first_delta = now()
                yield event
        finally:
            counter.active -= 1

    gateway.stream = stream  # type: ignore[attr-defined]


class _Sink(io.TextIOBase):
    """A terminal that keeps nothing."""

    def write(self, s: str) -> int:
        return len(s)

    def flush(self) -> None:
        pass


_SINK = _Sink()


class BenchSurface(ConsoleSurface):
    """The console surface (same code, same edit interval), printing into nothing."""

    def __init__(self, probe: Probe) -> None:
        super().__init__(PlainDisplay(_SINK))
        self.probe = probe
        self._posting = False

    async def post(self, text: str, write: Write) -> MessageRef:
        self._stamp(text, write)
        self._posting = True  # ConsoleSurface.post shows the text through edit
        try:
            return await super().post(text, write)
        finally:
            self._posting = False

    async def edit(self, ref: MessageRef, text: str, write: Write) -> MessageRef:
        if not self._posting:
            self._stamp(text, write)
        return await super().edit(ref, text, write)

    def _stamp(self, text: str, write: Write) -> None:
        probe = self.probe
        probe.writes += 1
        t = now()
        if probe.first_write is None:
            probe.first_write = t
        if write.final and write.controls:  # the last page carries the answer's controls
            probe.final_at = t
            probe.exact = text == probe.expected
