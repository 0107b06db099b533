"""Feishu's documented limits as shared budgets (``bot.platform.Budget``).

- every Open API, per app: 50 calls a second and 1,000 a minute (each API's page lists it):
  ``api(name)``, e.g. ``im.message.get`` (a replied-to message read back for ``/check``), which has
  no other limit;
- sending and replying: 5 a second per user (private chat) and per group, shared by every
  bot in the group; Feishu answers more with 230020;
- CardKit: 10 operations a second on one card (content, settings, updates, elements);
- patching one card message: 5 a second;
- cards shown to one person alone (``ephemeral/v1/send``): 40 a second in one group, besides
  the API's own 50 a second and 1,000 a minute per app.

Every answer draws from these (with ``REDIS_URL``, every process), so twenty group chats
answered at once queue for their slots instead of drawing 429s. ``scale`` is
``PLATFORM_TIME_SCALE``: tests shrink every window with it.
"""

from __future__ import annotations

from bot.platform import Budget, BudgetMap, Counters, Window

API_PER_SECOND, API_PER_MINUTE = 50, 1_000
CHAT_PER_SECOND = 5
CARD_PER_SECOND = 10
PATCH_PER_SECOND = 5
EPHEMERAL_PER_SECOND = 40  # per group


class FeishuBudgets:
    """One set per app; keys carry the API, the chat, the card or the message."""

    def __init__(self, scale: float = 1.0, counters: Counters | None = None) -> None:
        self._apis = BudgetMap(
            (Window(API_PER_SECOND, scale), Window(API_PER_MINUTE, 60 * scale)), name="feishu:api", counters=counters
        )
        self._chats = BudgetMap((Window(CHAT_PER_SECOND, scale),), name="feishu:chat", counters=counters)
        self._cards = BudgetMap((Window(CARD_PER_SECOND, scale),), name="feishu:card", counters=counters)
        self._patches = BudgetMap((Window(PATCH_PER_SECOND, scale),), name="feishu:patch", counters=counters)
        self._ephemeral = BudgetMap((Window(EPHEMERAL_PER_SECOND, scale),), name="feishu:ephemeral", counters=counters)

    def api(self, name: str) -> Budget:
        """One Open API (``im.message.reply``, ``cardkit.card_element.content``…) for the app."""
        return self._apis[name]

    def chat(self, chat_id: str) -> Budget:
        """Sends and replies in one chat (a private chat is one user's)."""
        return self._chats[chat_id]

    def card(self, card_id: str) -> Budget:
        return self._cards[card_id]

    def patch(self, message_id: str) -> Budget:
        return self._patches[message_id]

    def ephemeral(self, chat_id: str) -> Budget:
        """Cards shown to one person alone in one group (their own limit, not the chat's sends)."""
        return self._ephemeral[chat_id]
