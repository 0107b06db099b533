"""Telegram's flood limits as shared request budgets (bot.ratelimit.Budget).

Every budget is a leaky bucket of capacity one, so calls are spaced evenly and no
sliding window of Telegram's can be exceeded: one message or edit per ``private`` seconds
in a chat, one per ``group`` seconds in a group (20 a minute), drafts and chat actions
per chat (20 per 5 s and 40 per 30 s), and ~30 requests a second for the whole bot.
"""
from __future__ import annotations

from dataclasses import dataclass

from bot.config import Settings
from bot.ratelimit import Budget, BudgetMap


@dataclass(frozen=True, slots=True)
class Pacing:
    private: float = 1.1  # seconds between writes in one private chat
    group: float = 3.1  # seconds between writes in one group (20 per minute)
    draft: float = 0.8  # seconds between drafts / chat actions in one chat
    global_rate: float = 28.0  # requests per second, bot-wide (Telegram: ~30)
    typing_refresh: float = 4.5  # a typing action shows for about 5 s

    @classmethod
    def from_settings(cls, settings: Settings) -> Pacing:
        """The configured intervals, every one times PLATFORM_TIME_SCALE."""
        scale = settings.platform_time_scale
        base = cls(private=settings.telegram_private_interval, group=settings.telegram_group_interval)
        return cls(base.private * scale, base.group * scale, base.draft * scale, base.global_rate / scale,
                   base.typing_refresh * scale)


class Budgets:
    """The budgets of one bot, shared by every answer it writes."""

    def __init__(self, pacing: Pacing) -> None:
        self.pacing = pacing
        self.bot = Budget(1, 1.0 / pacing.global_rate, name="telegram:bot")
        self._private = BudgetMap(1, max(pacing.private, 1e-3), name="telegram:chat")
        self._group = BudgetMap(1, max(pacing.group, 1e-3), name="telegram:group")
        self._draft = BudgetMap(1, max(pacing.draft, 1e-3), name="telegram:draft")

    def messages(self, chat_id: int, *, group: bool) -> Budget:
        """Sends and edits in one chat (the budget a 429 on them pauses)."""
        return self._group[chat_id] if group else self._private[chat_id]

    def drafts(self, chat_id: int) -> Budget:
        """Drafts and chat actions in one chat (they share Telegram's draft budget)."""
        return self._draft[chat_id]
