"""The Feishu harness the adapter's tests share: the real adapter (its own long-connection
client, lark-oapi's typed calls) against the fake Feishu, with the real runtime and the fake
gateway. Every Feishu window and interval is shrunk by ``SCALE`` on both sides
(``PLATFORM_TIME_SCALE`` and the fake's ``time_scale``). Its fixtures (``fake``: the fake
Feishu; ``feishu``: the harness on it) reach every test through ``tests/conftest.py``'s
``pytest_plugins``; a module that defines a ``fake`` of its own keeps it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from adapters.feishu.adapter import FeishuAdapter
from bot.config import Settings
from bot.process.runtime import Runtime, build_runtime
from tests.fakes.feishu_api import FakeFeishu
from tests.fakes.feishu_cards import controls, walk_elements
from tests.fakes.feishu_model import FakeChat, FakeMessage
from tests.fakes.gateway import FakeGateway
from tests.platforms import connect
from tests.polling import eventually, settle_on_close

SCALE = 0.05
THOUGHT = "Let me weigh the brief: 桂花乌龙, young office workers."  # reasoning: never shown
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f"
    b"\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)


@dataclass
class Harness:
    fake: FakeFeishu
    gateway: FakeGateway
    settings: Settings
    runtime: Runtime
    adapter: FeishuAdapter

    async def send(self, event: dict) -> Any:
        delivery = await self.fake.push_event(event)
        assert delivery.acked, delivery.attempts
        return delivery

    async def settle(self, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            await self.adapter.drain()

    def answers(self, chat: FakeChat) -> list[str]:
        """What the bot's messages in ``chat`` read now (cards: their answer text)."""
        return [answer_text(m) for m in self.fake.bot_messages(chat.chat_id) if answer_text(m)]


def answer_text(message: FakeMessage) -> str:
    card = message.card_json
    if card is None:
        return message.text
    answer = next((e for e in walk_elements(card.get("body", {})) if e.get("element_id") == "answer"), None)
    return answer.get("content", "") if answer else ""


def presses(message: FakeMessage) -> list[str]:
    found = []
    for control in controls(message.card_json or {}):
        found += control["options"] or [(control["value"] or {}).get("p")]
    return [p for p in found if p]


def value_of(message: FakeMessage, data: str) -> dict:
    return next(c["value"] for c in controls(message.card_json or {}) if (c["value"] or {}).get("p") == data)


async def _harness(
    make_settings: Callable[..., Settings], gateway: FakeGateway, fake: FakeFeishu, **overrides: object
) -> Harness:
    values: dict[str, object] = dict(
        FEISHU_APP_ID=fake.app_id,
        FEISHU_APP_SECRET=fake.app_secret,
        FEISHU_DOMAIN=fake.base_url,
        PLATFORM_TIME_SCALE=SCALE,
    )
    values.update(overrides)
    settings = make_settings(**values)
    runtime = await build_runtime(settings, migrate=False)
    adapter = connect(runtime, "feishu", **values)
    assert isinstance(adapter, FeishuAdapter)
    await adapter.start()
    if adapter.settings.connection == "websocket":
        await fake.ws.wait_connected()
    await eventually(lambda: adapter.health().connected)
    return Harness(fake, gateway, settings, runtime, adapter)


async def _close(h: Harness) -> None:
    await settle_on_close(h.settle)
    await h.adapter.stop()
    await h.runtime.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeFeishu]:
    async with FakeFeishu(time_scale=SCALE) as server:
        yield server


@pytest.fixture
async def feishu(make_settings, fake_gateway, fake) -> AsyncIterator[Harness]:
    h = await _harness(make_settings, fake_gateway, fake)
    yield h
    await _close(h)
