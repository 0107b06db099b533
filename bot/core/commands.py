"""Slash commands, shared by every platform (adapters pass "/cmd args", "@bot" removed).

The core registers its own (/help, /new, /usage, /stop); packages register theirs
(copywriting: /style, /copy, /refine) through ``ChatService.extend``."""
from __future__ import annotations

from bot.core.kinds import CommandCall, CommandHandler


def parse_command(text: str) -> tuple[str, str]:
    """("copy", "the brief") for "/copy@bot the brief"; ("", "") when it is no command."""
    if not text.startswith("/") or len(text) < 2:
        return "", ""
    head, *rest = text.strip().split(maxsplit=1)  # the brief may start on the next line
    name = head[1:].split("@", 1)[0].lower()
    return name, rest[0].strip() if rest else ""


class Commands:
    def __init__(self) -> None:
        self._handlers: dict[str, CommandHandler] = {}

    def register(self, name: str, handler: CommandHandler) -> None:
        self._handlers[name] = handler

    def knows(self, name: str) -> bool:
        return name in self._handlers

    async def run(self, call: CommandCall) -> None:
        await self._handlers[call.name](call)
