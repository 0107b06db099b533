"""Telegram's flood limits, as documented, as shared request budgets (bot.ratelimits.budgets.Budget).

The budgets are the limits themselves, as sliding windows: ~30 requests a second for the
whole bot, one message or edit a second in a chat, 20 a minute in a group, and drafts with
chat actions 20 per 5 s and 40 per 30 s in a chat. How often one answer edits its message
(``Pacing``) is a separate, slower choice, so a new answer's first text finds room at once.

Telegram's windows are seconds long (the group's minute excepted) and its limits are used
whole from the start; a 429 on a chat's sends, a group's or a chat's drafts shrinks that
budget's burst (``bot.ratelimits.budgets``: calls then spread over its longest window), and
pressure after a quiet window probes it back up.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.telegram.settings import TelegramSettings
from bot.platform import Budget, BudgetMap, Counters, Window

BOT = (Window(30, 1.0),)
CHAT = (Window(1, 1.0),)
GROUP = (Window(1, 1.0), Window(20, 60.0))
DRAFTS = (Window(20, 5.0), Window(40, 30.0))


@dataclass(frozen=True, slots=True)
class Pacing:
    """How often one answer writes, and the time scale of every Telegram window."""

    private: float = 1.1  # seconds between edits of one answer in a private chat
    group: float = 3.1  # seconds between edits of one answer in a group (20 per minute)
    draft: float = 0.8  # seconds between drafts of one answer (40 per 30 s, with room)
    typing_refresh: float = 4.5  # a typing action shows for about 5 s
    scale: float = 1.0  # PLATFORM_TIME_SCALE: every window and interval times this

    @classmethod
    def from_settings(cls, settings: TelegramSettings, scale: float) -> Pacing:
        """The configured intervals, every one times PLATFORM_TIME_SCALE (``scale``)."""
        base = cls(private=settings.private_edit_interval, group=settings.group_edit_interval)
        return cls(base.private * scale, base.group * scale, base.draft * scale, base.typing_refresh * scale, scale)


def _scaled(windows: tuple[Window, ...], scale: float) -> tuple[Window, ...]:
    return tuple(Window(w.count, w.seconds * scale) for w in windows)


class Budgets:
    """The budgets of one bot, shared by every answer it writes (and, with REDIS_URL, by
    every process running the bot)."""

    def __init__(self, pacing: Pacing, counters: Counters | None = None) -> None:
        self.pacing = pacing
        s = pacing.scale
        self.bot = Budget(_scaled(BOT, s), name="telegram:bot", counters=counters)
        self._private = BudgetMap(_scaled(CHAT, s), name="telegram:chat", counters=counters)
        self._group = BudgetMap(_scaled(GROUP, s), name="telegram:group", counters=counters)
        self._draft = BudgetMap(_scaled(DRAFTS, s), name="telegram:draft", counters=counters)

    def messages(self, chat_id: int, *, group: bool) -> Budget:
        """Sends and edits in one chat (the budget a 429 on them pauses)."""
        return self._group[chat_id] if group else self._private[chat_id]

    def drafts(self, chat_id: int) -> Budget:
        """Drafts and chat actions in one chat (they share Telegram's draft budget)."""
        return self._draft[chat_id]
