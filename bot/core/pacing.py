"""The pacing engine: streams one answer onto a reply surface.

Deltas are coalesced into the answer's full text; a single writer task per answer shows
the newest text no faster than the surface's interval (so there are never two writes to
one message at once, and an edit carries everything that arrived while the previous one
was in flight). Unchanged text is never re-sent. A 429 (``RateLimited``) waits what it
says. Past the surface's length limit the answer continues in a new message. ``finish``
writes every message's final, formatted text and retries until it lands, so the chat
always ends with the whole answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from bot.platform.controls import Controls
from bot.platform.split import FENCE_RESERVE, split_markdown, split_point
from bot.platform.surface import (
    Ending,
    MessageRef,
    NativeStream,
    RateLimited,
    ReplySurface,
    StreamUnavailable,
    SurfaceGone,
    SurfaceLimits,
    Write,
    WriteFailed,
)

log = logging.getLogger(__name__)

FINAL_ATTEMPTS = 8  # a final write that keeps failing is given up after this many tries
STREAM_AGE_MARGIN = 0.9  # roll a native stream over at 90 % of its maximum age

OnWrite = Callable[[str, list[str]], Awaitable[None]]


class _Page:
    __slots__ = ("start", "ref", "sent", "stream", "opened_at", "frozen")

    def __init__(self, start: int) -> None:
        self.start = start  # index into the answer text where this message begins
        self.ref: MessageRef | None = None
        self.sent = ""  # the text last shown in this message
        self.stream: NativeStream | None = None
        self.opened_at = 0.0
        self.frozen = False


class AnswerWriter:
    def __init__(
        self,
        surface: ReplySurface,
        turn_id: int,
        *,
        on_write: OnWrite | None = None,
        native: bool = True,
        streaming_controls: Controls = (),
        on_gone: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.surface = surface
        self.turn_id = turn_id
        self.streaming_controls = streaming_controls  # shown while the answer streams (Stop)
        # Deltas are kept as a list and joined when a write needs the text: appending to
        # one string per token would copy the whole answer each time.
        self._chunks: list[str] = []
        self._joined = ""
        self.on_write = on_write
        self.clock = clock
        self._native = native
        self._pages: list[_Page] = [_Page(0)]
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._closing = False
        self._last_write = 0.0
        self._task: asyncio.Task[None] | None = None
        self.gone = False  # the place stopped taking our messages: write nothing more
        self._on_gone = on_gone

    # --- feeding ---
    def feed(self, delta: str) -> None:
        if not delta:
            return
        self._chunks.append(delta)
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"answer-writer-{self.turn_id}")

    @property
    def refs(self) -> list[str]:
        """Platform ids of every message the answer wrote, in order — including an open
        native stream's message when the platform has one, so a restart can repair it."""
        refs: list[str] = []
        for page in self._pages:
            ref = page.ref or (page.stream.ref if page.stream is not None else None)
            if ref is not None:
                refs.extend(ref.ids)
        return refs

    @property
    def text(self) -> str:
        """The answer so far."""
        if self._chunks:
            self._joined += "".join(self._chunks)
            self._chunks.clear()
        return self._joined

    @property
    def has_text(self) -> bool:
        return bool(self._joined or self._chunks)

    # --- the streaming loop ---
    async def _run(self) -> None:
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            if self._closing:
                break
            page = self._pages[-1]
            interval = self._limits(page).edit_interval
            wait = self._last_write + interval - self.clock()
            if wait > 0 and page.sent:
                await self._sleep_or_close(wait)
                if self._closing:
                    break
            try:
                await self._show_current()
            except SurfaceGone as exc:
                self._went(exc)
                return
            except RateLimited as exc:
                self._wake.set()
                await self._sleep_or_close(exc.retry_after)
            except (WriteFailed, StreamUnavailable) as exc:
                log.warning("turn %s: streaming write failed: %s", self.turn_id, exc)
                self._wake.set()
                await self._sleep_or_close(self._limits(page).edit_interval or 0.5)
            except Exception:  # a platform error must not end the answer
                log.exception("turn %s: unexpected error while streaming", self.turn_id)
                await self._sleep_or_close(1.0)

    def _went(self, exc: SurfaceGone) -> None:
        if not self.gone:
            log.info("turn %s: the chat no longer takes our messages (%s)", self.turn_id, exc)
            self.gone = True
            if self._on_gone is not None:
                self._on_gone()

    async def _sleep_or_close(self, seconds: float) -> None:
        # Wake early when the answer is finishing, so the final write is not delayed.
        self._wake.clear()
        try:
            await asyncio.wait_for(self._closed.wait(), timeout=seconds)
        except TimeoutError:
            pass
        self._wake.set()

    def _limits(self, page: _Page) -> SurfaceLimits:
        return page.stream.limits if page.stream is not None else self.surface.limits

    async def _show_current(self) -> None:
        page = self._pages[-1]
        if page.ref is None and page.stream is None and self._native:
            page.stream = await self.surface.open_stream(self.turn_id)
            if page.stream is None:
                self._native = False
            else:
                page.opened_at = self.clock()
        limits = self._limits(page)
        body = self.text[page.start :]
        if limits.measure(body) > limits.max_chars - FENCE_RESERVE:
            await self._freeze_page(page, body)
            return
        if (
            page.stream is not None
            and limits.max_age
            and self.clock() - page.opened_at > limits.max_age * STREAM_AGE_MARGIN
        ):
            await self._freeze_page(page, body, at_end=True)
            return
        if body.strip() == page.sent.strip():
            return
        await self._write(page, body, Write(self.turn_id, controls=self.streaming_controls))

    async def _write(self, page: _Page, body: str, write: Write) -> None:
        if page.stream is not None:
            try:
                await page.stream.update(body, write) if not write.final else None
                if write.final:
                    page.ref = await page.stream.close(body, write)
                    page.stream = None
            except StreamUnavailable:
                # The platform refused or expired the stream: what it showed stays as its
                # own message and the rest continues with post-and-edit.
                self._native = False
                page.stream = None
                if page.sent:
                    page.frozen = True
                    self._pages.append(_Page(page.start + len(page.sent)))
                raise
        elif page.ref is None:
            page.ref = await self.surface.post(body, write)
        else:
            page.ref = await self.surface.edit(page.ref, body, write)
        page.sent = body
        self._last_write = self.clock()
        if self.on_write is not None:
            await self.on_write(self.text, self.refs)

    async def _freeze_page(self, page: _Page, body: str, *, at_end: bool = False) -> None:
        """Close this message at a good boundary and start the next one."""
        limits = self._limits(page)
        if at_end:  # an old stream: close it at the last good boundary of what it shows
            cut = split_point(body, max(1, limits.measure(body) - 1), limits.measure)
        else:
            cut = split_point(body, limits.max_chars - FENCE_RESERVE, limits.measure)
        head = body[:cut]
        await self._final_write(page, head)
        page.frozen = True
        self._pages.append(_Page(page.start + cut))

    # --- finishing ---
    async def finish(
        self,
        final_text: str | None = None,
        *,
        reasoning: str = "",
        notice: bool = False,
        controls: Controls = (),
        ending: Ending | None = None,
        audience: str = "",
    ) -> list[str]:
        """Stop streaming and write the whole answer in its final form; ``controls`` and
        ``ending`` go on its last page; ``audience``: the one person a notice is for. Returns refs."""
        if final_text is not None:
            self._chunks, self._joined = [], final_text
        self._closing = True
        self._closed.set()
        self._wake.set()
        if self._task is not None:
            try:
                await self._task  # lets an in-flight write complete first
            except Exception:  # noqa: BLE001 - already logged by the loop
                pass
        if self.gone:
            return self.refs
        tail_page = self._pages[-1]
        body = self.text[tail_page.start :]
        if not body.strip() and len(self._pages) > 1 and tail_page.ref is None and tail_page.stream is None:
            # The answer ended exactly where a message was closed: give that message the
            # answer's buttons instead of posting an empty one.
            self._pages.pop()
            previous = self._pages[-1]
            await self._final_write(
                previous, previous.sent, notice=notice, controls=controls, ending=ending, audience=audience
            )
            return self.refs
        limits = self._limits(tail_page)
        pieces = split_markdown(body, limits.max_chars, limits.measure) if body else [""]
        for i, piece in enumerate(pieces):
            page = tail_page if i == 0 else self._new_page()
            last = i == len(pieces) - 1
            if not piece.strip() and not last:
                continue
            first = len(self._pages) == 1 and i == 0
            await self._final_write(
                page,
                piece or "…",
                notice=notice,
                reasoning=reasoning if first else "",
                controls=controls if last else (),
                ending=ending if last else None,
                audience=audience,
            )
        return self.refs

    def _new_page(self) -> _Page:
        page = _Page(len(self.text))
        self._pages.append(page)
        return page

    async def _final_write(
        self,
        page: _Page,
        body: str,
        *,
        notice: bool = False,
        reasoning: str = "",
        controls: Controls = (),
        ending: Ending | None = None,
        audience: str = "",
    ) -> None:
        write = Write(
            self.turn_id,
            final=True,
            notice=notice,
            reasoning=reasoning,
            controls=controls,
            ending=ending,
            audience=audience,
        )
        for attempt in range(FINAL_ATTEMPTS):
            if self.gone:
                return
            try:
                await self._write(page, body, write)
                return
            except SurfaceGone as exc:
                self._went(exc)
                return
            except RateLimited as exc:
                await asyncio.sleep(exc.retry_after)
            except StreamUnavailable:
                # Retry with post-and-edit (page.stream is gone). A stream that showed
                # something keeps it as its own message; the rest goes to a new one.
                if page.frozen:
                    shown = len(page.sent)
                    page = self._pages[-1]
                    body = body[shown:]
            except WriteFailed as exc:
                log.warning("turn %s: final write failed (%s), attempt %d", self.turn_id, exc, attempt + 1)
                if page.ref is not None:
                    page.ref = None  # the message may be gone; post the text anew
                await asyncio.sleep(min(2**attempt * 0.1, 5))
            except Exception:
                log.exception("turn %s: final write failed", self.turn_id)
                await asyncio.sleep(min(2**attempt * 0.1, 5))
        log.error("turn %s: gave up writing the final text after %d attempts", self.turn_id, FINAL_ATTEMPTS)
