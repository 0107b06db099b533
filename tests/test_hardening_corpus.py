"""Replay the corpus of documented update/event shapes (tests/corpus/) through the running
adapters' webhook and events endpoints: never a 5xx, and the ones that should be answered are."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from pathlib import Path

import httpx

from bot.process.runtime import build_runtime
from bot.process.webapp import create_app
from tests.fakes.slack_api import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.fakes.telegram_api import FakeLimits, FakeTelegram
from tests.platforms import connect

CORPUS = Path(__file__).parent / "corpus"
SECRET = "corpus-secret-0123456789"


async def test_telegram_corpus_through_the_webhook(make_settings, fake_gateway, caplog) -> None:
    cases = json.loads((CORPUS / "telegram_updates.json").read_text())
    async with FakeTelegram(limits=FakeLimits().scaled(0.2)) as tg:
        tg.add_chat(1001, "private", user={"first_name": "Alice"})
        tg.add_chat(-100200, "supergroup", title="Marketing")
        tg.add_chat(-100300, "supergroup", title="Launch", is_forum=True)
        values = dict(
            TELEGRAM_BOT_TOKEN=tg.token,
            TELEGRAM_API_URL=tg.api_url,
            TELEGRAM_WEBHOOK_URL="https://bot.example.com/telegram/webhook",
            TELEGRAM_WEBHOOK_SECRET=SECRET,
        )
        runtime = await build_runtime(make_settings(), migrate=False)
        adapter = connect(runtime, "telegram", **values)
        assert adapter is not None
        await adapter.start()
        try:
            transport = httpx.ASGITransport(app=create_app(adapter.routes()))
            async with httpx.AsyncClient(transport=transport, base_url="https://bot.example.com") as http:
                for case in cases:
                    r = await http.post(
                        "/telegram/webhook", json=case["update"], headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
                    )
                    assert r.status_code == 200, case["name"]
            # Each update was handed in before its 200: the drain waits for every answer.
            async with asyncio.timeout(30):
                await adapter.drain()
            for case in cases:
                chat = (case["update"].get("message") or {}).get("chat", {}).get("id")
                if case["answered"]:
                    assert tg.bot_messages(chat), f"not answered: {case['name']}"
            # Messages that waited together are answered together: count what the model was
            # asked, not the calls.
            asked = " ".join(json.dumps(r.body["messages"], ensure_ascii=False) for r in fake_gateway.requests)
            for case in cases:
                message = case["update"].get("message") or {}
                text = message.get("text") or message.get("caption")
                if case["answered"] and isinstance(text, str):
                    assert text.split()[-1] in asked, f"never asked: {case['name']}"
            assert 1 <= len(fake_gateway.requests) <= sum(c["answered"] for c in cases)
            # Handled, not only acknowledged: no shape made a handler fail behind the 200.
            assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
        finally:
            await adapter.stop()
            await runtime.close()


async def test_slack_corpus_through_the_events_endpoint(make_settings, fake_gateway) -> None:
    cases = json.loads((CORPUS / "slack_requests.json").read_text())
    fake = await FakeSlack().start()
    values = dict(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake.api_url)
    runtime = await build_runtime(make_settings(), migrate=False)
    adapter = connect(runtime, "slack", **values)
    assert adapter is not None
    await adapter.start()
    try:
        transport = httpx.ASGITransport(app=create_app(adapter.routes()))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            for case in cases:
                if case["kind"] == "event":
                    body, ctype = json.dumps(case["body"]).encode(), "application/json"
                elif case["kind"] == "interaction":
                    body, ctype = fake.form_body(case["body"]), "application/x-www-form-urlencoded"
                else:
                    body, ctype = urllib.parse.urlencode(case["body"]).encode(), "application/x-www-form-urlencoded"
                headers = fake.signed(body, content_type=ctype, retry_num=case.get("retry_num"))
                r = await http.post("/slack/events", content=body, headers=headers)
                assert r.status_code == 200, (case["name"], r.status_code)
                if case["body"].get("type") == "url_verification":
                    assert case["body"]["challenge"] in r.text
        async with asyncio.timeout(30):
            await adapter.drain()  # each event was handed in before its 200
        answered = [c for c in cases if c["answered"]]
        for case in answered:
            event = case["body"]["event"]
            assert fake.bot_replies(event["channel"], event["ts"]), case["name"]
        assert len(fake_gateway.requests) == len(answered)
    finally:
        await adapter.stop()
        await runtime.close()
        await fake.close()
