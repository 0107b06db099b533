"""Slash commands shared by every platform (adapters pass "/cmd args", "@bot" removed)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from bot.core import texts
from bot.messages import IncomingMessage
from bot.surface import ReplySurface

if TYPE_CHECKING:
    from bot.core.service import ChatService

KNOWN = ("start", "help", "new", "usage", "style", "copy", "refine")


def parse(text: str) -> tuple[str, str]:
    head, *rest = text.strip().split(maxsplit=1)  # the brief may start on the next line
    name = head[1:].split("@", 1)[0].lower()
    return name, rest[0].strip() if rest else ""


class Commands:
    def __init__(self, service: "ChatService") -> None:
        self.service = service

    def is_command(self, text: str) -> bool:
        return parse(text)[0] in KNOWN

    async def run(self, msg: IncomingMessage, surface: ReplySurface) -> None:
        name, args = parse(msg.text)
        service = self.service
        if name in ("start", "help"):
            await service.notify(surface, texts.HELP)
        elif name == "new":
            await service.store.new_epoch(msg.key)
            await service.notify(surface, texts.NEW_THREAD)
        elif name == "usage":  # issue-11 hook: own usage and limits; "/usage all" for admins
            conv = await service.store.conversation(msg.key, shared=msg.group)
            await service.notify(surface, await service.ops.usage_text(
                conv.id if conv else None, msg.key.platform, msg.author.id,
                all_users=args.strip().lower() == "all"))
        elif name in ("style", "copy", "refine"):
            from bot.core import copy_turns

            handler = {"style": copy_turns.style_command, "copy": copy_turns.copy_command,
                       "refine": copy_turns.refine_command}[name]
            await handler(service, msg, surface, args)
