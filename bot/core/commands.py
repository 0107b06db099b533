"""Slash commands, shared by every platform (adapters pass "/cmd args", "@bot" removed).

The core registers its own (/help, /new, /usage, /stop); features register theirs
(copywriting: /style, /copy) through ``ChatService.extend``. Every platform's command menu
is built from this registry, and a command nobody registered is answered as unknown (with
the closest known ones), never sent to the model.
"""

from __future__ import annotations

import difflib

from bot.core.kinds import Command, CommandCall
from bot.platform.inbox import CommandInfo
from bot.platform.messages import ConversationKey


def parse_command(text: str) -> tuple[str, str]:
    """("copy", "the brief") for "/copy@bot the brief"; ("", "") when it is no command."""
    if not text.startswith("/") or len(text) < 2:
        return "", ""
    head, *rest = text.strip().split(maxsplit=1)  # the brief may start on the next line
    name = head[1:].split("@", 1)[0].lower()
    return name, rest[0].strip() if rest else ""


def looks_like_command(name: str) -> bool:
    """A word a user could have meant as a command ("/stlye"), not a path ("/usr/bin")
    or a fraction ("/2")."""
    return (
        name.isascii() and name[:1].isalpha() and name.replace("_", "").replace("-", "").isalnum() and len(name) <= 32
    )


class Commands:
    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}

    def register(self, command: Command) -> None:
        self._commands[command.info.name] = command

    def knows(self, name: str) -> bool:
        return name in self._commands

    def get(self, name: str) -> Command:
        return self._commands[name]

    @property
    def infos(self) -> list[CommandInfo]:
        return [c.info for c in self._commands.values()]

    def closest(self, name: str, n: int = 3) -> list[str]:
        """The registered commands ``name`` most likely meant (a typo, a prefix)."""
        names = list(self._commands)
        prefixed = [c for c in names if c.startswith(name) or name.startswith(c)]
        close = difflib.get_close_matches(name, names, n=n, cutoff=0.6)
        return list(dict.fromkeys([*close, *prefixed]))[:n]

    def unknown_text(self, name: str) -> str:
        suggestions = self.closest(name)
        known = ", ".join(f"/{c.name}" for c in self.infos if c.menu)
        if suggestions:
            return (
                f"I don't know the command /{name}. Did you mean "
                f"{' or '.join(f'/{s}' for s in suggestions)}? (/help lists them all.)"
            )
        return f"I don't know the command /{name}. The commands are: {known}."

    def help_text(self, intro: str, outro: str = "") -> str:
        """Every registered command, one line each (what /help shows on every platform)."""
        lines = [f"/{c.name}{f' {c.usage}' if c.usage else ''} — {c.summary}" for c in self.infos if c.name != "start"]
        return "\n\n".join(filter(None, (intro, "Commands:\n" + "\n".join(lines), outro)))

    async def complete(self, key: ConversationKey, name: str, args: str) -> list[str]:
        """Words completing the last word of ``args`` (typed after ``/name``): what the
        command's completer offers at that place, starting with what is typed (any case)."""
        command = self._commands.get(name)
        if command is None or command.complete is None:
            return []
        words = args.split()
        typed = "" if not args or args[-1].isspace() else words.pop()
        offered = await command.complete(key, words)
        folded = typed.casefold()
        return [w for w in dict.fromkeys(offered) if w.casefold().startswith(folded) and w != typed]

    async def run(self, call: CommandCall) -> None:
        await self._commands[call.name].handler(call)
