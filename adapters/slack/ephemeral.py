"""A reply only the person who asked sees: Slack's ``response_url`` (bolt's ``respond``)
as a ReplySurface, for what a slash command or a click is told before any thread exists
(a refusal, "I can't post here")."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.platform import MessageRef, ReplySurface, SurfaceLimits, Write, WriteFailed

log = logging.getLogger(__name__)

Respond = Callable[..., Awaitable[Any]]
MAX_CHARS = 3_000  # a response_url message's text


class EphemeralSurface(ReplySurface):
    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.limits = SurfaceLimits(max_chars=MAX_CHARS)

    async def post(self, text: str, write: Write) -> MessageRef:
        try:
            await self.respond(text=text, response_type="ephemeral", replace_original=False)
        except Exception as exc:
            raise WriteFailed(f"response_url: {exc}") from exc
        return MessageRef("ephemeral")

    async def edit(self, ref: MessageRef, text: str, write: Write) -> MessageRef:
        return await self.post(text, write)  # an ephemeral message cannot be found again

    async def set_status(self, status: str) -> None:
        return None
