"""Admins, Slack and Telegram allowlists, blocked users: what a person writing to the bot sees."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.platform.messages import Author, ConversationKey, IncomingMessage
from bot.process.runtime import build_runtime
from bot.store.models import Message
from bot.usage.access import BLOCKED_TEXT, NOT_ALLOWED_TEXT, Access, Admins, Verdict
from tests.fakes.gateway import Answer
from tests.platforms import deliver, inbox_for, platform_settings
from tests.surfaces import RecordingSurface

SLACK = {
    "SLACK_ALLOWED_WORKSPACES": "T1",
    "SLACK_ALLOWED_CHANNELS": "C1",
    "SLACK_ALLOWED_USERS": "U1,U2",
    "BOT_ADMINS": "slack:UADMIN, 99",
}


def test_admins_by_platform_or_bare_id() -> None:
    admins = Admins("telegram:1, slack:U0A, 777")
    assert ("telegram", "1") in admins and ("slack", "1") not in admins
    assert ("slack", "U0A") in admins and ("console", "777") in admins and ("telegram", "") not in admins


async def test_slack_allowlists(make_settings, database_url) -> None:
    from bot.store.db import Database

    db = Database(database_url)
    access = Access(make_settings(**SLACK), db)
    rule = platform_settings("slack", **SLACK).admits

    async def decide(workspace: str, chat: str, user: str):
        return await access.decide("slack", workspace, chat, user, admission=rule(workspace, chat, user))

    try:
        assert (await decide("T1", "C1", "U1")).verdict is Verdict.ALLOW
        assert (await decide("T9", "C1", "U1")).verdict is Verdict.IGNORE  # foreign workspace
        outside = await decide("T1", "C2", "U1")
        assert outside.verdict is Verdict.REFUSE and outside.text == NOT_ALLOWED_TEXT
        assert (await decide("T1", "C2", "U1")).text == ""  # told once a day, not flooded
        assert (await decide("T1", "D5", "U2")).verdict is Verdict.ALLOW  # a DM: user list only
        stranger = await decide("T1", "C1", "U3")
        assert stranger.verdict is Verdict.REFUSE and stranger.reason == "user not allowlisted"
        assert (await decide("T9", "C9", "UADMIN")).verdict is Verdict.ADMIN
        assert (await access.decide("telegram", "b", "5", "99")).admin
    finally:
        await db.dispose()


async def test_telegram_allowlist(make_settings, database_url) -> None:
    from bot.store.db import Database

    db = Database(database_url)
    access = Access(make_settings(), db)
    rule = platform_settings("telegram", TELEGRAM_ALLOWED_CHATS="-100, 5").admits

    async def decide(chat: str, user: str):
        return await access.decide("telegram", "b", chat, user, admission=rule("b", chat, user))

    try:
        assert (await decide("-100", "8")).allowed
        assert (await decide("12", "5")).allowed  # an allowed person anywhere
        assert (await decide("12", "8")).verdict is Verdict.REFUSE
        assert (await access.decide("console", "local", "me", "me")).allowed  # no allowlist of its own
    finally:
        await db.dispose()


class Rt:
    """A runtime whose Slack messages go in through the Slack inbox (its allowlist applies)."""

    def __init__(self, runtime) -> None:
        self.runtime, self.service, self.db = runtime, runtime.service, runtime.db
        self.inbox = inbox_for(runtime, "slack", **SLACK)

    async def handle(self, msg: IncomingMessage, surface: RecordingSurface) -> None:
        await deliver(self.inbox, msg, surface)


@pytest.fixture
async def rt(make_settings):
    runtime = await build_runtime(make_settings(**SLACK), migrate=False)
    yield Rt(runtime)
    await runtime.close()


def slack_msg(text: str, user: str, channel: str = "C1", addressed: bool = True) -> IncomingMessage:
    return IncomingMessage(
        key=ConversationKey("slack", "T1", channel, "1.0"),
        author=Author(user, user),
        text=text,
        message_id=f"{user}-{text}",
        addressed=addressed,
        group=True,
    )


async def count_messages(rt) -> int:
    async with rt.db.read() as conn:
        return (await conn.execute(select(func.count(Message.id)))).scalar_one()


async def test_a_blocked_user_gets_one_polite_refusal(rt, fake_gateway) -> None:
    await rt.service.ops.access.block("slack", "U2", reason="spam", by="test")
    surface = RecordingSurface()
    await rt.handle(slack_msg("hello?", "U2"), surface)
    await rt.handle(slack_msg("hello??", "U2"), surface)
    await rt.handle(slack_msg("/usage", "U2"), surface)
    assert surface.texts == [BLOCKED_TEXT]
    assert [w.audience for w in surface.writes] == ["U2"]  # for the refused person alone
    assert fake_gateway.served == 0 and await count_messages(rt) == 0
    await rt.service.ops.access.unblock("slack", "U2")
    fake_gateway.script(Answer(text="welcome back"))
    await rt.handle(slack_msg("hello again", "U2"), surface)
    assert surface.texts[-1] == "welcome back"


async def test_a_channel_outside_the_allowlist_is_refused_not_answered(rt, fake_gateway) -> None:
    surface = RecordingSurface()
    await rt.handle(slack_msg("context chatter", "U1", channel="C7", addressed=False), surface)
    await rt.handle(slack_msg("help me", "U1", channel="C7"), surface)
    assert surface.texts == [NOT_ALLOWED_TEXT] and fake_gateway.served == 0
    # The admin is served anywhere.
    fake_gateway.script(Answer(text="yes boss"))
    await rt.handle(slack_msg("help me", "UADMIN", channel="C7"), surface)
    assert surface.texts[-1] == "yes boss"
