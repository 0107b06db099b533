"""Who asked for a turn's tool calls, and where: what tools from outside (MCP servers) are
permitted, recorded and confirmed by.

Built once per turn by the chat kind and handed to every ``ToolSource``; the built-in tools
need none of it."""

from __future__ import annotations

from dataclasses import dataclass

from bot.platform.surface import ReplySurface


@dataclass(frozen=True, slots=True)
class Where:
    """A chat as permissions see it: its platform, workspace and chat id, and whether
    several people talk there (a group or channel) or it is one person's private chat."""

    platform: str
    workspace: str
    chat: str
    group: bool


@dataclass(frozen=True, slots=True)
class CallContext:
    where: Where
    user_id: str  # the author of the newest message the turn answers
    conversation_id: int
    turn_id: int
    # Where the turn answers: approvals are asked there (None: no one can be asked, e.g. a
    # one-shot run; a tool that needs an approval is then refused).
    surface: ReplySurface | None = None
