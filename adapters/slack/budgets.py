"""Slack's rate limits as shared budgets: per workspace and method, and per channel for posts.

Slack counts calls per method, per app, per workspace (Tier 2 ≈ 20/min, Tier 3 ≈ 50/min,
Tier 4 ≈ 100/min) and chat.postMessage at about one per second per channel. Every answer
in a workspace draws from the same budgets, so fifty answers at once queue instead of
drawing 429s. A leaky bucket with burst B and leak rate R lets through up to B + R·W calls
in any window W, so the leak rate is set to keep that under the tier's count with margin.
"""
from __future__ import annotations

from bot.ratelimit import Budget, BudgetMap

# Calls per "minute" (the window) per workspace, as Slack documents them.
TIERS: dict[str, int] = {
    "chat.startStream": 20,
    "chat.stopStream": 20,
    "chat.update": 50,
    "conversations.replies": 50,
    "chat.appendStream": 100,
    "files.info": 100,
    "users.info": 100,
    "assistant.threads.setSuggestedPrompts": 100,
    "assistant.threads.setTitle": 100,
    "assistant.threads.setStatus": 600,
}
SAFETY = 0.85  # use at most this share of a tier in any window
POST_SPACING = 1.25  # posts to one channel at most once per this many "seconds"


def tier_budget(per_window: int, window: float, name: str) -> BudgetMap:
    usable = max(2, int(per_window * SAFETY))
    burst = max(1, usable // 8)
    leak = max(1, usable - burst)  # calls per window once the burst is spent
    return BudgetMap(burst, burst * window / leak, name=name)


class SlackBudgets:
    """One set per adapter (one app); keys carry the workspace."""

    def __init__(self, window: float = 60.0) -> None:  # Slack's "minute", times PLATFORM_TIME_SCALE
        self._tiers = {method: tier_budget(count, window, method) for method, count in TIERS.items()}
        # One post per POST_SPACING seconds (scaled like the tiers) per channel.
        second = window / 60.0
        self._posts = BudgetMap(1, POST_SPACING * second, name="chat.postMessage")

    def method(self, team: str, method: str) -> Budget:
        return self._tiers[method][team]

    def post(self, team: str, channel: str) -> Budget:
        return self._posts[(team, channel)]

    def for_call(self, team: str, method: str, channel: str | None = None) -> list[Budget]:
        if method == "chat.postMessage":
            return [self.post(team, channel or "")]
        return [self.method(team, method)] if method in self._tiers else []
