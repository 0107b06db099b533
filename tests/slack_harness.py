"""The Slack test harness, a pytest plugin (listed in conftest's ``pytest_plugins``): the fake
Slack API with its rate windows shrunk, the running adapter behind an in-process HTTP client,
and the fixtures the Slack tests share."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest

from adapters.slack.adapter import SlackAdapter
from bot.config import Settings
from bot.process.runtime import Runtime, build_runtime
from bot.process.webapp import create_app
from tests.fakes.gateway import FakeGateway
from tests.fakes.slack_api import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.platforms import connect
from tests.polling import settle_on_close

# minimax-m2.7 always thinks first; the gateway client holds untagged text until it knows
# it is not reasoning, so streamed test answers carry some reasoning like the real model's.
THOUGHT = "Let me think about this."
WINDOW = 3.0  # seconds standing in for Slack's minute
CHANNEL = "C0GENERAL1"
DM = "D0ALICE001"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f"
    b"\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)


@dataclass
class Harness:
    fake: FakeSlack
    gateway: FakeGateway
    settings: Settings
    runtime: Runtime
    adapter: SlackAdapter
    http: httpx.AsyncClient

    @property
    def service(self):
        return self.runtime.service

    async def send(
        self, envelope: dict, *, retry_num: int | None = None, secret: str | None = None, timestamp: int | None = None
    ) -> httpx.Response:
        body = json.dumps(envelope).encode()
        headers = self.fake.signed(body, retry_num=retry_num, secret=secret, timestamp=timestamp)
        return await self.http.post("/slack/events", content=body, headers=headers)

    async def click(self, payload: dict) -> httpx.Response:
        body = self.fake.form_body(payload)
        headers = self.fake.signed(body, content_type="application/x-www-form-urlencoded")
        return await self.http.post("/slack/events", content=body, headers=headers)

    async def command(self, fields: dict) -> httpx.Response:
        """A slash command, posted the way Slack posts it (form fields, signed)."""
        body = urllib.parse.urlencode(fields).encode()
        headers = self.fake.signed(body, content_type="application/x-www-form-urlencoded")
        return await self.http.post("/slack/events", content=body, headers=headers)

    async def settle(self, timeout: float = 20.0) -> None:
        """Wait until every answer the adapter started has finished. An event is handed in
        before its HTTP 200 (or its socket ack): nothing sent earlier can be missed."""
        async with asyncio.timeout(timeout):
            await self.adapter.drain()

    def reply_text(self, channel: str, thread_ts: str) -> str:
        return "".join(m.text for m in self.fake.bot_replies(channel, thread_ts))


async def _harness(
    make_settings: Callable[..., Settings], gateway: FakeGateway, fake: FakeSlack, **overrides: object
) -> Harness:
    values: dict[str, object] = dict(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake.api_url,
        PLATFORM_TIME_SCALE=fake.window / 60,
    )
    values.update(overrides)
    settings_values = dict(**values)
    settings = make_settings(**settings_values)
    runtime = await build_runtime(settings, migrate=False)
    adapter = connect(runtime, "slack", **settings_values)
    assert isinstance(adapter, SlackAdapter)
    try:
        await adapter.start()
    except BaseException:
        await runtime.close()  # a start refused (a revoked token) leaves nothing running
        raise
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(adapter.routes())), base_url="http://testserver"
    )
    return Harness(fake, gateway, settings, runtime, adapter, http)


async def _close(h: Harness) -> None:
    await settle_on_close(h.settle)
    await h.adapter.stop()
    await h.http.aclose()
    await h.runtime.close()


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack(window=WINDOW, post_interval=WINDOW / 60).start()
    yield fake
    await fake.close()


@pytest.fixture
async def slack(make_settings, fake_gateway, fake_slack) -> AsyncIterator[Harness]:
    h = await _harness(make_settings, fake_gateway, fake_slack)
    yield h
    await _close(h)


@pytest.fixture
async def slack_with(make_settings, fake_gateway, fake_slack) -> AsyncIterator[Callable]:
    """A harness with settings of the test's own (streaming on or off, stream age…)."""
    made: list[Harness] = []

    async def make(**overrides: object) -> Harness:
        made.append(await _harness(make_settings, fake_gateway, fake_slack, **overrides))
        return made[-1]

    yield make
    for h in made:
        await _close(h)
