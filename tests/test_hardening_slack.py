"""Slack edges (issue 12): /slack/events caps, verifies, then parses; every interaction is
acknowledged. The real adapter (``adapters.slack.create``) against the fake Slack API, over
``httpx.ASGITransport``; Slack's real rate tiers (one answer per test at most)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from bot.platform import Platform
from bot.process.webapp import create_app
from tests.fakes.gateway import FakeGateway
from tests.fakes.slack_api import APP_ID, BOT_TOKEN, BOT_USER_ID, SIGNING_SECRET, TEAM_ID, FakeSlack
from tests.platforms import connect
from tests.polling import eventually

CHANNEL = "C0GENERAL1"
MB = 1024 * 1024


@dataclass
class Slack:
    fake: FakeSlack
    gateway: FakeGateway
    http: httpx.AsyncClient
    adapter: Platform

    async def settle(self) -> None:
        """Everything handed in (before each HTTP 200) was handled and answered."""
        async with asyncio.timeout(20):
            await self.adapter.drain()

    async def post(
        self,
        body: bytes,
        *,
        content_type: str = "application/json",
        signed: bool = True,
        retry_num: int | None = None,
        **headers: str,
    ) -> httpx.Response:
        sent = (
            self.fake.signed(body, content_type=content_type, retry_num=retry_num)
            if signed
            else {"Content-Type": content_type}
        )
        return await self.http.post("/slack/events", content=body, headers={**sent, **headers})

    async def event(self, envelope: dict, **kw: object) -> httpx.Response:
        return await self.post(json.dumps(envelope).encode(), **kw)  # type: ignore[arg-type]

    async def interaction(self, payload: dict) -> httpx.Response:
        return await self.post(self.fake.form_body(payload), content_type="application/x-www-form-urlencoded")

    async def form(self, fields: dict) -> httpx.Response:
        return await self.post(
            urllib.parse.urlencode(fields).encode(), content_type="application/x-www-form-urlencoded"
        )


@pytest.fixture
async def slack(make_settings, fake_gateway) -> AsyncIterator[Slack]:
    from bot.process.runtime import build_runtime

    fake = await FakeSlack().start()
    settings_values = dict(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake.api_url)
    settings = make_settings(**settings_values)
    runtime = await build_runtime(settings, migrate=False)
    adapter = connect(runtime, "slack", **settings_values)
    assert adapter is not None
    await adapter.start()
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(adapter.routes())), base_url="http://testserver"
    )
    try:
        yield Slack(fake, fake_gateway, http, adapter)
    finally:
        await http.aclose()
        await adapter.stop()
        await runtime.close()
        await fake.close()


class CountingBody:
    """A request body streamed in 64 KB chunks, counting how much the server pulled."""

    def __init__(self, size: int) -> None:
        self.size, self.pulled = size, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.size:
            chunk = b"x" * min(64 * 1024, self.size - self.pulled)
            self.pulled += len(chunk)
            yield chunk


# ---- the events endpoint ------------------------------------------------------------------
async def test_a_huge_body_is_refused_before_it_is_read(slack: Slack) -> None:
    declared = CountingBody(150 * MB)
    response = await slack.http.post(
        "/slack/events", content=declared, headers={"Content-Length": str(150 * MB), "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert declared.pulled <= 64 * 1024, "a declared oversize body is refused unread"
    chunked = CountingBody(150 * MB)  # no Content-Length: read only up to the cap
    response = await slack.http.post("/slack/events", content=chunked, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert chunked.pulled <= 2 * MB


async def test_a_signed_five_megabyte_event_is_neither_answered_nor_stored(slack: Slack) -> None:
    ts, envelope = slack.fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> " + "tea " * (5 * MB // 4), mention=True)
    assert (await slack.event(envelope)).status_code == 413
    # The same event at a normal size is answered: the refusal was the size, nothing else.
    small = {
        **envelope,
        "event": {**envelope["event"], "text": f"<@{BOT_USER_ID}> tea please"},
        "event_id": "Ev-small-1",
    }
    assert (await slack.event(small)).status_code == 200
    await eventually(lambda: slack.fake.bot_replies(CHANNEL, ts))
    assert len(slack.gateway.requests) == 1
    assert "tea tea tea" not in str(slack.gateway.requests[0].body["messages"])


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Slack-Signature": "v0=" + "0" * 64, "X-Slack-Request-Timestamp": str(int(time.time()))},
        {"X-Slack-Signature": "v0=abc", "X-Slack-Request-Timestamp": "not a number"},
    ],
    ids=["unsigned", "wrong-signature", "junk-timestamp"],
)
async def test_unsigned_requests_get_401_before_anything_is_parsed(slack: Slack, headers: dict) -> None:
    for body in (b"this is not json", json.dumps(slack.fake.user_message(CHANNEL, "hi")[1]).encode()):
        response = await slack.http.post(
            "/slack/events", content=body, headers={"Content-Type": "application/json", **headers}
        )
        assert response.status_code == 401
    assert slack.gateway.requests == []


async def test_a_stale_signature_is_refused(slack: Slack) -> None:
    _, envelope = slack.fake.user_message("D0ALICE001", "replayed")
    body = json.dumps(envelope).encode()
    headers = slack.fake.signed(body, timestamp=int(time.time()) - 600)  # correctly signed, 10 min old
    assert (await slack.http.post("/slack/events", content=body, headers=headers)).status_code == 401
    assert slack.gateway.requests == []


@pytest.mark.parametrize(
    "body,content_type",
    [
        (b"not json at all {", "application/json"),
        (b"{broken", "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b"payload=%7Bnot-json", "application/x-www-form-urlencoded"),
        (b"payload=%5B1%5D", "application/x-www-form-urlencoded"),
        (b"", "application/json"),
    ],
    ids=["text", "broken-json", "array", "form-broken-payload", "form-array-payload", "empty"],
)
async def test_a_signed_body_that_cannot_be_parsed_gets_400_not_500(
    slack: Slack, body: bytes, content_type: str
) -> None:
    response = await slack.post(body, content_type=content_type)
    assert response.status_code == 400
    assert "Traceback" not in response.text


async def test_a_body_that_is_not_utf8_cannot_be_verified(slack: Slack) -> None:
    response = await slack.post(b"\xff\xfe\x00garbage", content_type="application/octet-stream")
    assert response.status_code == 401


async def test_a_retried_event_is_acknowledged_and_answered_once(slack: Slack) -> None:
    ts, envelope = slack.fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> hello", mention=True)
    assert (await slack.event(envelope)).status_code == 200
    for retry in (1, 2, 3):
        assert (await slack.event(envelope, retry_num=retry)).status_code == 200
    await slack.settle()
    assert len(slack.fake.bot_replies(CHANNEL, ts)) == 1 and len(slack.gateway.requests) == 1


# ---- interactions nobody listens to --------------------------------------------------------
def _user() -> dict:
    return {"id": "U0ALICE01", "team_id": TEAM_ID, "username": "alice"}


def _view(callback_id: str) -> dict:
    return {
        "id": "V0VIEW001",
        "type": "modal",
        "callback_id": callback_id,
        "team_id": TEAM_ID,
        "state": {"values": {}},
        "hash": "1.abc",
        "private_metadata": "",
        "app_id": APP_ID,
    }


def unhandled_interactions(port: int) -> dict[str, dict]:
    response_url = f"http://127.0.0.1:{port}/api/response_url"
    team = {"id": TEAM_ID, "domain": "fake"}
    return {
        "block_actions": {
            "type": "block_actions",
            "team": team,
            "user": _user(),
            "api_app_id": APP_ID,
            "trigger_id": "1.2.3",
            "response_url": response_url,
            "container": {"type": "message"},
            "actions": [
                {
                    "type": "button",
                    "action_id": "someone_elses_button",
                    "block_id": "b1",
                    "value": "x",
                    "action_ts": "1.2",
                }
            ],
        },
        "global_shortcut": {
            "type": "shortcut",
            "callback_id": "open_settings",
            "team": team,
            "user": _user(),
            "trigger_id": "1.2.3",
            "token": "t",
        },
        "message_shortcut": {
            "type": "message_action",
            "callback_id": "translate_this",
            "team": team,
            "user": _user(),
            "trigger_id": "1.2.3",
            "channel": {"id": CHANNEL},
            "message_ts": "1.000001",
            "message": {"ts": "1.000001", "text": "hi"},
            "response_url": response_url,
        },
        "view_submission": {
            "type": "view_submission",
            "team": team,
            "user": _user(),
            "api_app_id": APP_ID,
            "trigger_id": "1.2.3",
            "view": _view("feedback_form"),
        },
        "view_closed": {
            "type": "view_closed",
            "team": team,
            "user": _user(),
            "api_app_id": APP_ID,
            "view": _view("feedback_form"),
            "is_cleared": False,
        },
        "block_suggestion": {
            "type": "block_suggestion",
            "team": team,
            "user": _user(),
            "api_app_id": APP_ID,
            "action_id": "pick_product",
            "block_id": "b2",
            "value": "tea",
            "container": {"type": "view", "view_id": "V0VIEW001"},
            "view": _view("form"),
        },
        "attachment_button": {
            "type": "interactive_message",
            "callback_id": "legacy_menu",
            "team": team,
            "user": _user(),
            "channel": {"id": CHANNEL},
            "actions": [{"name": "go", "type": "button", "value": "1"}],
            "action_ts": "1.2",
            "message_ts": "1.000001",
            "response_url": response_url,
        },
        "dialog_submission": {
            "type": "dialog_submission",
            "callback_id": "old_dialog",
            "team": team,
            "user": _user(),
            "channel": {"id": CHANNEL},
            "submission": {"a": "b"},
            "state": "",
            "response_url": response_url,
            "action_ts": "1.2",
        },
    }


async def test_every_interaction_without_a_listener_is_acknowledged(slack: Slack) -> None:
    for name, payload in unhandled_interactions(slack.fake.port).items():
        response = await slack.interaction(payload)
        assert response.status_code == 200, f"{name}: {response.status_code} (the user would see an error)"
        if name == "block_suggestion":
            assert response.json() == {"options": []}


async def test_an_unknown_slash_command_is_acknowledged_with_a_sentence(slack: Slack) -> None:
    fields = slack.fake.slash_command(CHANNEL, "/not-ours", "hello")
    response = await slack.form(fields)
    assert response.status_code == 200
    assert "/not-ours" in response.text and "/style" in response.text  # the closest known ones
    assert slack.gateway.requests == [] and slack.fake.calls_to("chat.postMessage") == []


async def test_events_the_app_does_not_use_are_acknowledged(slack: Slack) -> None:
    for event in (
        {
            "type": "reaction_added",
            "user": "U0ALICE01",
            "reaction": "tea",
            "item": {"type": "message", "channel": CHANNEL, "ts": "1.000001"},
            "event_ts": "1.2",
        },
        {"type": "member_joined_channel", "user": "U0BOB0001", "channel": CHANNEL, "event_ts": "1.3"},
        {
            "type": "message",
            "subtype": "message_deleted",
            "channel": CHANNEL,
            "ts": "1.4",
            "deleted_ts": "1.000001",
            "event_ts": "1.4",
        },
    ):
        assert (await slack.event(slack.fake.envelope(event))).status_code == 200
    assert slack.gateway.requests == []
