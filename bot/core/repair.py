"""After a restart: the messages of answers that were streaming when a process died are
rewritten with the text the store recovered (already marked as interrupted), every page,
through the platform's own surface."""

from __future__ import annotations

import asyncio
import logging

from bot.platform.controls import answer_controls
from bot.platform.split import split_markdown
from bot.platform.surface import MessageRef, RateLimited, ReplySurface, Write, WriteFailed
from bot.store.repo import RecoveredAnswer

log = logging.getLogger(__name__)
ATTEMPTS = 5
SURPLUS = "…"  # a page the shorter recovered text no longer fills


async def repair(surface: ReplySurface, answer: RecoveredAnswer) -> list[str]:
    """Rewrite ``answer``'s pages; returns the ids of the messages it now has."""
    limits = surface.limits
    texts = split_markdown(answer.text, limits.max_chars, limits.measure) if answer.text.strip() else []
    old = [page for page in answer.pages if page]
    count = max(len(texts), len(old))
    written: list[str] = []
    for n in range(count):
        last = n == count - 1
        text = texts[n] if n < len(texts) else SURPLUS
        # The last page gets Regenerate and feedback: the user can ask again.
        controls = answer_controls(answer.turn_id) if last else ()
        write = Write(answer.turn_id, final=True, controls=controls)
        target = old[n] if n < len(old) else None
        for _attempt in range(ATTEMPTS):
            try:
                if target is not None:
                    ref = await surface.edit(MessageRef(target), text, write)
                else:
                    # A draft leaves no message behind: the recovered text becomes a new one.
                    ref = await surface.post(text, write)
                written.extend(ref.ids)
                break
            except RateLimited as exc:
                await asyncio.sleep(exc.retry_after)
            except WriteFailed as exc:
                log.info("turn %s: message %s is gone (%s); posting anew", answer.turn_id, target, exc)
                target = None
        else:
            log.warning("turn %s: could not repair page %d", answer.turn_id, n + 1)
    return written
