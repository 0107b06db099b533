"""Access on Slack end to end: real slack-bolt against the fake Slack API, the real core and
the fake gateway. A person outside the allowlist, or blocked, is told politely — once — and
nothing reaches the model, whether they write or press a button."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from adapters.slack import controls
from bot.process.runtime import build_runtime
from bot.process.webapp import create_app
from bot.usage.access import BLOCKED_TEXT, NOT_ALLOWED_TEXT
from tests.fakes.slack_api import BOT_TOKEN, BOT_USER_ID, SIGNING_SECRET, TEAM_ID, FakeSlack
from tests.platforms import connect

CHANNEL = "C0GENERAL1"
WINDOW = 3.0


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack(window=WINDOW, post_interval=WINDOW / 60).start()
    yield fake
    await fake.close()


class Slack:
    def __init__(self, fake: FakeSlack, runtime, adapter) -> None:
        self.fake, self.runtime, self.adapter = fake, runtime, adapter
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(adapter.routes())), base_url="http://testserver"
        )

    async def post(self, body: bytes, content_type: str = "application/json") -> httpx.Response:
        return await self.http.post(
            "/slack/events", content=body, headers=self.fake.signed(body, content_type=content_type)
        )

    async def send(self, envelope: dict) -> None:
        assert (await self.post(json.dumps(envelope).encode())).status_code == 200
        await self.settle()

    async def click(self, payload: dict) -> None:
        assert (await self.post(self.fake.form_body(payload), "application/x-www-form-urlencoded")).status_code == 200
        await self.settle()

    async def settle(self) -> None:
        async with asyncio.timeout(20):
            await self.adapter.drain()  # events are handed in before their HTTP 200


async def start(make_settings, fake: FakeSlack, **overrides: str) -> Slack:
    settings_values = dict(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake.api_url,
        PLATFORM_TIME_SCALE=str(fake.window / 60),
        **overrides,
    )
    settings = make_settings(**settings_values)
    runtime = await build_runtime(settings, migrate=False)
    adapter = connect(runtime, "slack", **settings_values)
    await adapter.start()
    return Slack(fake, runtime, adapter)


async def stop(s: Slack) -> None:
    await s.settle()
    await s.adapter.stop()
    await s.http.aclose()
    await s.runtime.close()


async def test_a_channel_outside_the_allowlist_gets_one_refusal(make_settings, fake_gateway, fake_slack) -> None:
    s = await start(make_settings, fake_slack, SLACK_ALLOWED_CHANNELS="C0OTHER001")
    try:
        first, env = fake_slack.user_message(CHANNEL, f"<@{BOT_USER_ID}> hello", mention=True)
        await s.send(env)
        second, env = fake_slack.user_message(CHANNEL, f"<@{BOT_USER_ID}> hello again", mention=True)
        await s.send(env)
        # The refusal is for the asker alone (ephemeral, in the thread), and said once.
        assert fake_slack.bot_replies(CHANNEL, first) == []
        assert [(e.text, e.thread_ts) for e in fake_slack.ephemerals_for("U0ALICE01", CHANNEL)] == [
            (NOT_ALLOWED_TEXT, first)
        ]
        assert fake_slack.bot_replies(CHANNEL, second) == []
        assert fake_gateway.served == 0
    finally:
        await stop(s)


async def test_a_blocked_user_cannot_write_or_press_regenerate(make_settings, fake_gateway, fake_slack) -> None:
    s = await start(make_settings, fake_slack, SLACK_ALLOWED_WORKSPACES=TEAM_ID)
    try:
        fake_gateway.script("a slogan")
        ts, env = fake_slack.user_message(CHANNEL, f"<@{BOT_USER_ID}> a slogan", mention=True)
        await s.send(env)
        answer = fake_slack.bot_replies(CHANNEL, ts)[0]
        await s.runtime.service.ops.access.block("slack", "U0ALICE01", by="test")
        await s.click(fake_slack.block_action(answer, controls.REGENERATE))
        assert [m.text for m in fake_slack.bot_replies(CHANNEL, ts)] == ["a slogan"]
        # ephemeral, to her only
        assert any(BLOCKED_TEXT in json.dumps(r, ensure_ascii=False) for r in fake_slack.responses)
        later, env = fake_slack.user_message(CHANNEL, f"<@{BOT_USER_ID}> another one", mention=True)
        await s.send(env)
        assert fake_slack.bot_replies(CHANNEL, later) == []  # told once today already
        assert fake_gateway.served == 1
    finally:
        await stop(s)
