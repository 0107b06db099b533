"""Telegram edges (issue 12): updates PTB cannot parse, anonymous admins, linked channels.

The real adapter (``adapters.telegram.create``) against the fake Bot API, driven by polling or
through its webhook route; the fake gateway echoes what it was asked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from adapters.telegram.app import TelegramAdapter
from bot.process.runtime import build_runtime
from bot.process.webapp import create_app
from tests.fakes.telegram_api import FakeLimits, FakeTelegram
from tests.platforms import connect
from tests.polling import eventually
from tests.telegram_harness import settle, watch

SCALE = 0.2
ALICE = {"id": 1001, "is_bot": False, "first_name": "Alice"}
BOB = {"id": 1002, "is_bot": False, "first_name": "Bob"}
CAROL = {"id": 1003, "is_bot": False, "first_name": "Carol"}
OTHER_BOT = {"id": 999, "is_bot": True, "first_name": "Other", "username": "other_bot"}
# Telegram's service accounts, as the Bot API documents them.
ANONYMOUS_ADMIN = {"id": 1087968824, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"}
TELEGRAM_SERVICE = {"id": 777000, "is_bot": False, "first_name": "Telegram"}
GROUP = -100200
GROUP_CHAT = {"id": GROUP, "title": "Marketing", "type": "supergroup"}
CHANNEL_CHAT = {"id": -100900, "title": "Tea News", "type": "channel", "username": "teanews"}
WEBHOOK_URL = "https://bot.example.com/telegram/webhook"
SECRET = "s3cret_token-XYZ-hardening"


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(limits=FakeLimits().scaled(SCALE)) as fake:
        for user in (ALICE, BOB, CAROL):
            fake.add_chat(user["id"], "private", user=user)
        fake.add_chat(GROUP, "supergroup", title="Marketing")
        yield fake


@pytest.fixture
async def start_bot(make_settings, tg) -> AsyncIterator[Callable]:
    running: list = []

    async def start(**overrides: object):
        settings_values = dict(
            TELEGRAM_BOT_TOKEN=tg.token,
            TELEGRAM_API_URL=tg.api_url,
            TELEGRAM_PRIVATE_EDIT_INTERVAL=1.1 * SCALE,
            TELEGRAM_GROUP_EDIT_INTERVAL=3.1 * SCALE,
            **overrides,
        )
        settings = make_settings(**settings_values)
        runtime = await build_runtime(settings, migrate=False)
        adapter = connect(runtime, "telegram", **settings_values)
        assert isinstance(adapter, TelegramAdapter)
        watch(tg, adapter)
        running.append((runtime, adapter))
        await adapter.start()
        return adapter

    yield start
    for runtime, adapter in reversed(running):
        await adapter.stop()
        await runtime.close()


def finished(tg: FakeTelegram, chat_id: int) -> list:
    """The bot's messages in a chat that carry the final buttons (a finished answer)."""
    return [
        m
        for m in tg.bot_messages(chat_id)
        if any(
            b.get("callback_data", "").startswith("regen:")
            for row in (m.reply_markup or {}).get("inline_keyboard", [])
            for b in row
        )
    ]


def prompts(gateway) -> str:
    return "\n".join(str(r.body["messages"]) for r in gateway.requests)


def mention(tg: FakeTelegram, text: str) -> list[dict]:
    return [tg.mention_entity(text)]


# ---- updates python-telegram-bot cannot parse ---------------------------------------------
BROKEN_MESSAGES = {
    "no date (a field PTB requires)": lambda chat: {"message_id": 7, "chat": chat, "text": "hi"},
    "message is a string": lambda chat: "broken",
    "chat without type": lambda chat: {"message_id": 7, "date": 0, "chat": {"id": chat["id"]}, "text": "hi"},
    "entity without offset": lambda chat: {
        "message_id": 7,
        "date": 0,
        "chat": chat,
        "text": "hi",
        "entities": [{"type": "bold"}],
    },
    "no chat at all": lambda chat: {"message_id": 7, "date": 0, "text": "hi"},
}


async def test_polling_drops_unparseable_updates_answers_the_rest_and_moves_on(
    start_bot, tg, fake_gateway, caplog
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.telegram")
    adapter = await start_bot()
    tg.send_user_message(ALICE["id"], ALICE, "first question")
    bad_ids = [tg.push_update({"message": make(tg.chats[BOB["id"]])})["update_id"] for make in BROKEN_MESSAGES.values()]
    tg.send_user_message(BOB["id"], BOB, "second question")
    await eventually(lambda: finished(tg, ALICE["id"]) and finished(tg, BOB["id"]))
    assert "echo: first question" in finished(tg, ALICE["id"])[-1].text
    assert "echo: second question" in finished(tg, BOB["id"])[-1].text
    # The offset moved past the bad updates: they are never fetched again.
    await eventually(lambda: any((c.params.get("offset") or 0) > max(bad_ids) for c in tg.calls_to("getUpdates")))
    await settle(tg, adapter)
    for bad in bad_ids:
        lines = [r for r in caplog.records if f"update {bad} " in r.getMessage()]
        assert len(lines) == 1, f"update {bad} logged {len(lines)} times"
    assert len(fake_gateway.requests) == 2


async def test_webhook_acknowledges_unparseable_updates_once_and_keeps_answering(
    start_bot, tg, fake_gateway, caplog
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.telegram")
    adapter = await start_bot(TELEGRAM_WEBHOOK_URL=WEBHOOK_URL, TELEGRAM_WEBHOOK_SECRET=SECRET)
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    transport = httpx.ASGITransport(app=create_app(adapter.routes()))
    async with httpx.AsyncClient(transport=transport, base_url="https://bot.example.com") as http:
        for i, make in enumerate(BROKEN_MESSAGES.values()):
            update = {"update_id": 9000 + i, "message": make(tg.chats[ALICE["id"]])}
            response = await http.post("/telegram/webhook", json=update, headers=headers)
            assert response.status_code == 200, "Telegram would redeliver a non-2xx for ever"
        # JSON that is not an update at all is acknowledged too.
        for body in ([1, 2], {"update_id": "nine"}, {"message": {}}):
            assert (await http.post("/telegram/webhook", json=body, headers=headers)).status_code == 200
        good = {"update_id": 9100, "message": tg.new_message(ALICE["id"], ALICE, "still there?")}
        assert (await http.post("/telegram/webhook", json=good, headers=headers)).status_code == 200
        await eventually(lambda: finished(tg, ALICE["id"]))
        # A body over the cap is refused before it is read whole.
        huge = b'{"update_id": 1, "message": {"text": "' + b"x" * (2 * 1024 * 1024) + b'"}}'
        assert (await http.post("/telegram/webhook", content=huge, headers=headers)).status_code == 413
    assert "echo: still there?" in finished(tg, ALICE["id"])[-1].text
    assert len(fake_gateway.requests) == 1
    for i in range(len(BROKEN_MESSAGES)):
        assert len([r for r in caplog.records if f"update {9000 + i} " in r.getMessage()]) == 1


# ---- who wrote it -------------------------------------------------------------------------
async def test_an_anonymous_admin_who_mentions_the_bot_is_answered_and_named_after_the_group(
    start_bot, tg, fake_gateway
) -> None:
    await start_bot()
    text = f"@{tg.username} write a slogan for our tea"
    asked = tg.new_message(GROUP, ANONYMOUS_ADMIN, text, entities=mention(tg, text), extra={"sender_chat": GROUP_CHAT})
    tg.push_update({"message": asked})
    [answer] = await eventually(lambda: finished(tg, GROUP))
    assert answer.reply_to == asked["message_id"]
    assert "[Marketing] write a slogan for our tea" in prompts(fake_gateway)
    assert "GroupAnonymousBot" not in prompts(fake_gateway) and "[Group]" not in prompts(fake_gateway)


async def test_a_linked_channel_post_is_context_and_other_bots_stay_ignored(start_bot, tg, fake_gateway) -> None:
    adapter = await start_bot()
    tg.send_user_message(
        GROUP,
        TELEGRAM_SERVICE,
        "New: a jasmine green tea, out on Monday",
        extra={
            "sender_chat": CHANNEL_CHAT,
            "is_automatic_forward": True,
            "forward_origin": {"type": "channel", "chat": CHANNEL_CHAT, "message_id": 55, "date": int(time.time())},
        },
    )
    bot_text = f"@{tg.username} buy cheap followers"
    tg.send_user_message(GROUP, OTHER_BOT, bot_text, entities=mention(tg, bot_text))
    await settle(tg, adapter)
    assert fake_gateway.requests == [] and tg.bot_messages(GROUP) == [], "context and bots are not answered"
    text = f"@{tg.username} write a post about it"
    tg.send_user_message(GROUP, CAROL, text, entities=mention(tg, text))
    await eventually(lambda: finished(tg, GROUP))
    seen = prompts(fake_gateway)
    assert "[Tea News] New: a jasmine green tea, out on Monday" in seen
    assert "[Carol] write a post about it" in seen
    assert "cheap followers" not in seen
    assert len(fake_gateway.requests) == 1
