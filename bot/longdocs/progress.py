"""How far a long reading is, where the user sees it: a message of the bot's own, edited as
the reading moves ("第 3 / 12 部分"), and the turn's status line.

A status line alone is not enough: Telegram shows only "typing…", however long the wait.
The message is cosmetic work — edits are paced (no faster than the platform allows, and no
more than one every few seconds), a busy platform's 429 skips an update rather than
delaying the reading, and a failed write is logged, never raised — except its last text,
which is retried so the chat does not keep saying "part 3 of 12" once the answer is there.
Its platform ids are stored with the job, so a reading resumed after a restart edits the
same message instead of posting another.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from bot.platform.controls import Controls
from bot.platform.surface import MessageRef, RateLimited, ReplySurface, SurfaceGone, Write, WriteFailed

log = logging.getLogger(__name__)

EVERY = 3.0  # seconds between two edits at least (times PLATFORM_TIME_SCALE)
FINAL_ATTEMPTS = 4
LAST_WORD = 2.0  # seconds a stopped reading's last text may take (it must not hold up a shutdown)


class ProgressNote:
    def __init__(
        self,
        surface: ReplySurface,
        turn_id: int,
        *,
        refs: list[str] | None = None,
        every: float = EVERY,
        on_posted: Callable[[list[str]], Awaitable[None]] | None = None,
        controls: Controls = (),
    ) -> None:
        self.surface = surface
        self.turn_id = turn_id
        self.ref = MessageRef(refs[0], tuple(refs[1:])) if refs else None
        self.every = max(every, surface.limits.edit_interval)
        self.on_posted = on_posted
        self.controls = controls  # shown while the reading runs (Stop): the answer has no message yet
        self.shown = ""
        self._bare = False  # the text shown carries no controls
        self.gone = False
        self._wanted = ""
        self._last = 0.0
        self._task: asyncio.Task | None = None
        self._hurry = asyncio.Event()  # the last text is due: paced updates give way

    def show(self, text: str) -> None:
        """Say ``text`` soon (a newer text replaces one not shown yet); never waits."""
        self._wanted = text
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"progress-{self.turn_id}")

    async def _run(self) -> None:
        while self._wanted != self.shown and not self.gone:
            wait = self._last + self.every - time.monotonic()
            if wait > 0 and self.ref is not None:
                try:
                    await asyncio.wait_for(self._hurry.wait(), wait)
                except TimeoutError:
                    pass
            if self._hurry.is_set():
                return  # the last text is being written: no update in between
            text = self._wanted
            if not await self._write(text):
                return  # skipped: the next show() tries again

    async def done(self, text: str) -> None:
        """The last text: written as soon as the platform allows once the update in flight is
        over (not after the pacing of progress updates), retried until it lands."""
        self._wanted = text
        self._hurry.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        wait = self._last + self.surface.limits.edit_interval - time.monotonic()
        if wait > 0 and self.ref is not None:
            await asyncio.sleep(wait)
        for attempt in range(FINAL_ATTEMPTS):
            if self.gone or (self.shown == text and self._bare) or await self._write(text, final=True):
                return
            await asyncio.sleep(min(2.0, 0.2 * 2**attempt))

    async def stopped(self, text: str) -> None:
        """The reading was stopped (Stop, or the process is going): one quick try at saying
        where it stopped, without controls."""
        if self._task is not None:
            self._task.cancel()
        if self.ref is not None and not self.gone:
            try:
                await asyncio.wait_for(self._write(text, final=True), LAST_WORD)
            except TimeoutError:
                pass

    async def _write(self, text: str, *, final: bool = False) -> bool:
        write = Write(self.turn_id, final=True, notice=True, controls=() if final else self.controls)
        try:
            if self.ref is None:
                self.ref = await self.surface.post(text, write)
                if self.on_posted is not None:
                    await self.on_posted(list(self.ref.ids))
            else:
                self.ref = await self.surface.edit(self.ref, text, write)
        except SurfaceGone:
            self.gone = True
            return False
        except RateLimited as exc:
            if final:
                await asyncio.sleep(exc.retry_after)
            return False
        except WriteFailed as exc:
            # The message may be gone (deleted, or from a process long ago): a new one next time.
            log.info("turn %s: progress write failed (%s)", self.turn_id, exc)
            self.ref = None
            return False
        except Exception:
            log.warning("turn %s: progress write failed", self.turn_id, exc_info=True)
            return False
        self.shown = text
        self._bare = final
        self._last = time.monotonic()
        return True
