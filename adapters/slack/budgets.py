"""Slack's rate limits, as documented, as shared budgets: per workspace and method, and per
channel for posts.

Slack counts calls per method, per app, per workspace in a minute (Tier 2 = 20, Tier 3 =
50, Tier 4 = 100) and chat.postMessage at about one a second per channel. The budgets are
those limits as sliding windows; every answer in a workspace (and with REDIS_URL every
process) draws from the same ones, so fifty answers at once queue instead of drawing 429s.
Slack promises "occasional bursts" but not how large, so each method's burst starts at a
sixth of its minute (Tier 2: 3 calls at once, then one every 3 s) and is learned from Slack
(``bot.ratelimits.budgets``: pressure probes it upwards one call at a time, to the whole
minute on a Slack that allows it; a 429 takes it back). A method whose limit Slack does not
document ("special": assistant.threads.*) starts from its family's tier and halves on each 429.
"""

from __future__ import annotations

from bot.platform import Budget, BudgetMap, Counters, Window

TIER_2, TIER_3, TIER_4 = 20, 50, 100

# Calls per minute per workspace, as Slack documents them.
TIERS: dict[str, int] = {
    "chat.startStream": TIER_2,
    "chat.stopStream": TIER_2,
    "chat.update": TIER_3,
    "conversations.replies": TIER_3,
    "chat.appendStream": TIER_4,
    "chat.postEphemeral": TIER_4,
    "files.info": TIER_4,
    "files.getUploadURLExternal": TIER_4,
    "files.completeUploadExternal": TIER_4,
    "users.info": TIER_4,
}
# Limits Slack gives no number for ("special"): the family's tier to start from (Tier 3 for
# assistant.threads.*); 429s teach the rest.
UNDOCUMENTED: dict[str, int] = {
    "assistant.threads.setStatus": TIER_3,
    "assistant.threads.setTitle": TIER_3,
    "assistant.threads.setSuggestedPrompts": TIER_3,
}
POSTS_PER_SECOND = 1  # chat.postMessage, per channel
BURST_SHARE = 6  # a method's first assumed burst: its minute's calls divided by this


class SlackBudgets:
    """One set per adapter (one app); keys carry the workspace."""

    def __init__(self, window: float = 60.0, counters: Counters | None = None) -> None:
        # ``window`` is Slack's minute, times PLATFORM_TIME_SCALE.
        self._methods = {
            method: BudgetMap(
                (Window(count, window),), name=f"slack:{method}", counters=counters, burst=count // BURST_SHARE
            )
            for method, count in TIERS.items()
        }
        self._methods.update(
            {
                method: BudgetMap(
                    (Window(count, window),),
                    name=f"slack:{method}",
                    counters=counters,
                    adaptive=True,
                    burst=count // BURST_SHARE,
                )
                for method, count in UNDOCUMENTED.items()
            }
        )
        self._posts = BudgetMap(
            (Window(POSTS_PER_SECOND, window / 60.0),), name="slack:chat.postMessage", counters=counters
        )

    def method(self, team: str, method: str) -> Budget:
        return self._methods[method][team]

    def post(self, team: str, channel: str) -> Budget:
        return self._posts[(team, channel)]

    def for_call(self, team: str, method: str, channel: str | None = None) -> list[Budget]:
        if method == "chat.postMessage":
            return [self.post(team, channel or "")]
        return [self.method(team, method)] if method in self._methods else []
