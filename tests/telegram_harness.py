"""The Telegram test harness, a pytest plugin (listed in conftest's ``pytest_plugins``): the
fake Bot API with Telegram's windows shrunk, the running bot (adapter and runtime), and the
waits and checks the Telegram tests share.

Telegram's limit windows (in the fake) and the adapter's pacing are shrunk by the same factor,
so the tests run fast while every limit still binds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from telegram import Update
from telegram.ext import TypeHandler

from adapters.telegram.app import TelegramAdapter
from bot.process.runtime import build_runtime
from tests.fakes.telegram_api import FakeLimits, FakeTelegram
from tests.platforms import connect
from tests.polling import eventually

SCALE = 0.2  # Telegram's windows and our intervals, both shrunk five times

ALICE = {"id": 1001, "is_bot": False, "first_name": "Alice", "username": "alice"}
BOB = {"id": 1002, "is_bot": False, "first_name": "Bob"}
CAROL = {"id": 1003, "is_bot": False, "first_name": "Carol", "last_name": "Lee"}
OTHER_BOT = {"id": 999, "is_bot": True, "first_name": "Other", "username": "other_bot"}
GROUP = -100200
FORUM = -100300
# MiniMax always thinks first; answers without reasoning reach the core in one piece (the
# gateway client holds text that could be reasoning with its opening tag missing).
THINK = "Let me think about this."


# ---- fixtures and helpers -----------------------------------------------------------
@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(limits=FakeLimits().scaled(SCALE)) as fake:
        for user in (ALICE, BOB, CAROL):
            fake.add_chat(user["id"], "private", user=user)
        fake.add_chat(GROUP, "supergroup", title="Marketing")
        fake.add_chat(FORUM, "supergroup", title="Launch", is_forum=True)
        yield fake


class Bot:
    """A running adapter and its runtime; ``restart`` simulates a new process."""

    def __init__(self, make_settings: Callable, tg: FakeTelegram, overrides: dict) -> None:
        # Telegram's real pacing, shrunk like the fake's windows (PLATFORM_TIME_SCALE).
        self.values = dict(
            TELEGRAM_BOT_TOKEN=tg.token,
            TELEGRAM_API_URL=tg.api_url,
            TELEGRAM_POLL_TIMEOUT=1,
            PLATFORM_TIME_SCALE=SCALE,
            **overrides,
        )
        self.settings = make_settings(**self.values)
        self.tg = tg
        self.runtime = None
        self.adapter: TelegramAdapter | None = None

    async def start(self) -> Bot:
        self.runtime = await build_runtime(self.settings, migrate=False)
        adapter = connect(self.runtime, "telegram", **self.values)
        assert isinstance(adapter, TelegramAdapter)
        watch(self.tg, adapter)
        self.adapter = adapter
        await adapter.start()
        return self

    async def settle(self) -> None:
        assert self.adapter is not None
        await settle(self.tg, self.adapter)

    async def stop(self) -> None:
        if self.adapter is not None:
            await self.adapter.stop()
        if self.runtime is not None:
            await self.runtime.close()

    @property
    def service(self):
        return self.runtime.service


@pytest.fixture
async def start_bot(make_settings, tg) -> AsyncIterator[Callable]:
    bots: list[Bot] = []

    async def start(**overrides: object) -> Bot:
        bot = await Bot(make_settings, tg, overrides).start()
        bots.append(bot)
        return bot

    yield start
    for bot in reversed(bots):
        await bot.stop()


def watch(tg: FakeTelegram, adapter: TelegramAdapter) -> None:
    """Note in ``tg.handled`` each update the adapter begins to handle: a handler group ahead
    of the adapter's own, run in the same step, before the update is handed to the inbox."""

    async def note(update: Update, _context: object) -> None:
        tg.handled.add(update.update_id)

    adapter.application.add_handler(TypeHandler(Update, note), group=-1)


async def settle(tg: FakeTelegram, adapter: TelegramAdapter, timeout: float = 15.0) -> None:
    """Every update queued so far reached the adapter, and all it handed in was handled and
    answered: what a test waits for before asserting that something did *not* happen."""
    await eventually(lambda: set(tg.pushed) <= tg.handled, timeout)
    async with asyncio.timeout(timeout):
        await adapter.drain()


async def answered(tg: FakeTelegram, chat_id: int, count: int = 1, *, timeout: float = 10.0) -> list:
    """The bot's messages in a chat once ``count`` of them carry final buttons."""

    def done() -> list | None:
        finals = [m for m in tg.bot_messages(chat_id) if any(b.startswith("regen:") for b in _buttons(m))]
        return tg.bot_messages(chat_id) if len(finals) >= count else None

    return await eventually(done, timeout)


def _buttons(message) -> list[str]:
    markup = message.reply_markup or {}
    return [b.get("callback_data", "") for row in markup.get("inline_keyboard", []) for b in row]


def user_prompt(body: dict) -> str:
    parts = []
    for m in body["messages"]:
        if m["role"] == "user":
            c = m["content"]
            parts.append(c if isinstance(c, str) else " ".join(b.get("text", "") for b in c if b.get("type") == "text"))
    return "\n".join(parts)


def no_limit_broken(tg: FakeTelegram) -> None:
    assert tg.earned_429s() == [], [(c.method, c.description) for c in tg.earned_429s()]
    assert tg.limit_violations() == []
