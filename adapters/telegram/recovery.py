"""After a restart: rewrite the messages of answers that were streaming when the process
died with the text the core recovered (already marked as interrupted)."""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from adapters.telegram.surface import PAGE_UNITS, Place
from bot.core.split import split_markdown
from bot.surface import MessageRef, RateLimited, WriteFailed, Write, utf16_len

if TYPE_CHECKING:
    from adapters.telegram.app import TelegramAdapter
    from bot.store.repo import RecoveredAnswer

log = logging.getLogger(__name__)
ATTEMPTS = 5


async def repair_recovered(adapter: "TelegramAdapter", answers: list["RecoveredAnswer"]) -> None:
    for answer in answers:
        if adapter.me is None or answer.key.workspace != str(adapter.me.id):
            continue
        try:
            await _repair(adapter, answer)
        except Exception:  # noqa: BLE001 - one broken chat must not stop the others
            log.exception("telegram: could not repair interrupted answer of turn %s", answer.turn_id)


async def _repair(adapter: "TelegramAdapter", answer: "RecoveredAnswer") -> None:
    chat_id = int(answer.key.chat)
    topic = int(answer.key.thread) if answer.key.thread else None
    surface = adapter.surface_at(Place(chat_id, topic, None, private=chat_id > 0))
    pages = split_markdown(answer.text, PAGE_UNITS, utf16_len)
    ids = [i for i in answer.message_ids if i]
    for n, page in enumerate(pages):
        write = Write(answer.turn_id, final=True, last_page=n == len(pages) - 1)
        for attempt in range(ATTEMPTS):
            try:
                if n < len(ids):
                    await surface.edit(MessageRef(ids[n]), page, write)
                else:
                    # A draft leaves no message behind: the recovered text becomes a new one.
                    await surface.post(page, write)
                break
            except RateLimited as exc:
                await asyncio.sleep(exc.retry_after)
            except WriteFailed as exc:
                log.info("telegram: message %s of turn %s is gone (%s); posting anew",
                         ids[n] if n < len(ids) else "-", answer.turn_id, exc)
                ids = ids[:n]
