"""The fake Feishu Open Platform driven by the real lark-oapi SDK (no adapter of ours yet):
what the SDK sends is what Feishu accepts, what Feishu answers is what the SDK understands,
and the traps the adapter must work around are shown here for real."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import lark_oapi as lark
import lark_oapi.ws.client as lark_ws_client
import pytest
import uvicorn
import websockets
from lark_oapi.api.cardkit.v1 import (
    Card,
    ContentCardElementRequest,
    ContentCardElementRequestBody,
    CreateCardRequest,
    CreateCardRequestBody,
    SettingsCardRequest,
    SettingsCardRequestBody,
    UpdateCardRequest,
    UpdateCardRequestBody,
)
from lark_oapi.api.im.v1 import (
    CreateMessageRequest,
    CreateMessageRequestBody,
    GetMessageResourceRequest,
    ReplyMessageRequest,
    ReplyMessageRequestBody,
    UpdateMessageRequest,
    UpdateMessageRequestBody,
)
from lark_oapi.core.exception import ObtainAccessTokenException
from lark_oapi.core.model import RawRequest
from lark_oapi.event.callback.model.p2_card_action_trigger import P2CardActionTriggerResponse
from lark_oapi.ws.exception import ClientException
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.feishu_api import FakeFeishu, FeishuLimits
from tests.fakes.feishu_ws import DATA, decode_frame, encode_frame
from tests.polling import eventually
from tests.processes import free_port

SCALE = 0.01  # Feishu's seconds x 0.01: 10 min of streaming = 6 s, the 3 s ack wait = 30 ms


@pytest.fixture
async def fake() -> AsyncIterator[FakeFeishu]:
    async with FakeFeishu(time_scale=SCALE, ack_timeout=100) as server:  # a 1 s ack wait: no spurious re-push
        yield server


@pytest.fixture(autouse=True)
def no_thread_left() -> Any:
    yield
    leftover = [t for t in threading.enumerate() if t.name.startswith("lark-ws")]
    assert not leftover, leftover


def sdk(fake: FakeFeishu) -> lark.Client:
    return (
        lark.Client.builder()
        .app_id(fake.app_id)
        .app_secret(fake.app_secret)
        .domain(fake.base_url)
        .log_level(lark.LogLevel.WARNING)
        .build()
    )


async def run(method: Callable[[Any], Any], request: Any) -> Any:
    """The SDK's synchronous call in a worker thread. Its ``a…`` coroutines are no way out:
    they fetch the tenant token with blocking ``requests`` inside the event loop."""
    return await asyncio.to_thread(method, request)


def text_to(receive_id_type: str, receive_id: str, text: str, uuid: str | None = None) -> CreateMessageRequest:
    body = (
        CreateMessageRequestBody.builder()
        .receive_id(receive_id)
        .msg_type("text")
        .content(json.dumps({"text": text}, ensure_ascii=False))
    )
    if uuid:
        body = body.uuid(uuid)
    return CreateMessageRequest.builder().receive_id_type(receive_id_type).request_body(body.build()).build()


def reply(
    message_id: str, msg_type: str, content: dict, *, in_thread: bool = False, uuid: str | None = None
) -> ReplyMessageRequest:
    body = (
        ReplyMessageRequestBody.builder()
        .msg_type(msg_type)
        .content(json.dumps(content, ensure_ascii=False))
        .reply_in_thread(in_thread)
    )
    if uuid:
        body = body.uuid(uuid)
    return ReplyMessageRequest.builder().message_id(message_id).request_body(body.build()).build()


STREAMING_CARD = {
    "schema": "2.0",
    "config": {
        "streaming_mode": True,
        "update_multi": True,
        "summary": {"content": "[生成中...]"},
        "streaming_config": {
            "print_frequency_ms": {"default": 30},
            "print_step": {"default": 2},
            "print_strategy": "fast",
        },
    },
    "body": {"elements": [{"tag": "markdown", "content": "思考中…", "element_id": "answer"}]},
}


def create_card(card: dict) -> CreateCardRequest:
    return (
        CreateCardRequest.builder()
        .request_body(
            CreateCardRequestBody.builder().type("card_json").data(json.dumps(card, ensure_ascii=False)).build()
        )
        .build()
    )


def push_text(card_id: str, text: str, sequence: int) -> ContentCardElementRequest:
    return (
        ContentCardElementRequest.builder()
        .card_id(card_id)
        .element_id("answer")
        .request_body(ContentCardElementRequestBody.builder().content(text).sequence(sequence).build())
        .build()
    )


def close_streaming(card_id: str, sequence: int) -> SettingsCardRequest:
    settings = json.dumps({"config": {"streaming_mode": False, "summary": {"content": "文案已写好"}}})
    return (
        SettingsCardRequest.builder()
        .card_id(card_id)
        .request_body(SettingsCardRequestBody.builder().settings(settings).sequence(sequence).build())
        .build()
    )


# ---- Open API ---------------------------------------------------------------------------


async def test_sdk_sends_text_to_a_user_and_a_group(fake: FakeFeishu) -> None:
    client = sdk(fake)
    alice = fake.user("alice")
    group = fake.group_chat("市场部")
    to_alice = await run(client.im.v1.message.create, text_to("open_id", alice.open_id, "你好"))
    to_group = await run(client.im.v1.message.create, text_to("chat_id", group.chat_id, "大家好"))
    assert to_alice.success() and to_group.success(), (to_alice.msg, to_group.msg)
    assert to_alice.data.message_id.startswith("om_") and to_alice.data.sender.id == fake.app_id
    [dm] = fake.transcript(fake.p2p_chat(alice).chat_id)
    assert (dm.text, dm.from_bot, dm.msg_type) == ("你好", True, "text")
    assert [m.text for m in fake.transcript(group.chat_id)] == ["大家好"]
    assert fake.calls_to("auth.tenant_access_token"), "the SDK fetched a tenant token first"
    assert fake.rate_limited == []

    nobody = await run(client.im.v1.message.create, text_to("open_id", "ou_nobody", "hi"))
    assert nobody.code == 230013
    fake.events.bot_deleted(group, alice)
    outside = await run(client.im.v1.message.create, text_to("chat_id", group.chat_id, "还在吗"))
    assert (outside.code, outside.raw.status_code) == (230002, 400)


async def test_wrong_secret_raises_instead_of_answering(fake: FakeFeishu) -> None:
    client = (
        lark.Client.builder()
        .app_id(fake.app_id)
        .app_secret("wrong")
        .domain(fake.base_url)
        .log_level(lark.LogLevel.CRITICAL)
        .build()
    )
    with pytest.raises(ObtainAccessTokenException) as raised:
        await run(client.im.v1.message.create, text_to("chat_id", fake.group_chat("g").chat_id, "hi"))
    assert raised.value.code == 10014
    assert fake.messages == {}


async def test_reply_in_thread_and_idempotent_uuid(fake: FakeFeishu) -> None:
    client = sdk(fake)
    alice = fake.user("alice")
    group = fake.group_chat("市场部")
    asked, _ = fake.events.text(group, alice, "@_user_1 写三条小红书标题", mentions=[fake.bot])
    first = await run(
        client.im.v1.message.reply, reply(asked.message_id, "text", {"text": "好的"}, in_thread=True, uuid="turn-1")
    )
    again = await run(
        client.im.v1.message.reply, reply(asked.message_id, "text", {"text": "好的"}, in_thread=True, uuid="turn-1")
    )
    assert first.success() and again.success()
    assert again.data.message_id == first.data.message_id, "same uuid within 1 h: one message"
    [answer] = fake.bot_messages(group.chat_id)
    assert answer.root_id == asked.message_id and answer.thread_id and answer.thread_id.startswith("omt_")
    assert [c.deduplicated for c in fake.calls_to("im.message.reply")] == [False, True]

    # A user's follow-up inside the thread, answered there without asking for a thread again.
    follow, event = fake.events.text(group, alice, "再来三条", parent=asked)
    assert event["event"]["message"]["thread_id"] == answer.thread_id
    more = await run(client.im.v1.message.reply, reply(follow.message_id, "text", {"text": "再来"}))
    assert more.data.thread_id == answer.thread_id and more.data.root_id == asked.message_id

    merged, _ = fake.events.merge_forward(group, alice)
    refused = await run(client.im.v1.message.reply, reply(merged.message_id, "text", {"text": "收到"}, in_thread=True))
    assert refused.code == 230072  # "Aggregated messages do not support reply in thread."


async def test_text_can_be_edited_twenty_times(fake: FakeFeishu) -> None:
    client = sdk(fake)
    sent = await run(client.im.v1.message.create, text_to("chat_id", fake.group_chat("g").chat_id, "v0"))
    message_id = sent.data.message_id
    codes = []
    for version in range(1, 22):
        edit = (
            UpdateMessageRequest.builder()
            .message_id(message_id)
            .request_body(
                UpdateMessageRequestBody.builder().msg_type("text").content(json.dumps({"text": f"v{version}"})).build()
            )
            .build()
        )
        codes.append((await run(client.im.v1.message.update, edit)).code)
    assert codes == [0] * 20 + [230072]
    assert fake.messages[message_id].text == "v20"


async def test_downloads_the_images_and_files_a_user_sent(fake: FakeFeishu) -> None:
    client = sdk(fake)
    alice = fake.user("alice")
    chat = fake.p2p_chat(alice)
    picture, event = fake.events.image(chat, alice, b"\x89PNG\r\n\x1a\n-fake-")
    image_key = json.loads(event["event"]["message"]["content"])["image_key"]
    brief, event = fake.events.file(chat, alice, b"%PDF-1.7 brief", "产品简介.pdf", content_type="application/pdf")
    file_key = json.loads(event["event"]["message"]["content"])["file_key"]

    def download(message_id: str, key: str, kind: str) -> GetMessageResourceRequest:
        return GetMessageResourceRequest.builder().message_id(message_id).file_key(key).type(kind).build()

    image = await run(client.im.v1.message_resource.get, download(picture.message_id, image_key, "image"))
    pdf = await run(client.im.v1.message_resource.get, download(brief.message_id, file_key, "file"))
    assert image.success() and image.file.read() == b"\x89PNG\r\n\x1a\n-fake-"
    assert pdf.success() and pdf.file.read() == b"%PDF-1.7 brief" and pdf.file_name == "产品简介.pdf"
    elsewhere = await run(client.im.v1.message_resource.get, download(picture.message_id, file_key, "file"))
    assert (elsewhere.code, elsewhere.file) == (234003, None)


async def test_streams_a_card_and_closes_it(fake: FakeFeishu) -> None:
    client = sdk(fake)
    alice = fake.user("alice")
    group = fake.group_chat("市场部")
    asked, _ = fake.events.text(group, alice, "@_user_1 写一段新品文案", mentions=[fake.bot])
    created = await run(client.cardkit.v1.card.create, create_card(STREAMING_CARD))
    assert created.success(), created.msg
    card_id = created.data.card_id
    sent = await run(
        client.im.v1.message.reply,
        reply(asked.message_id, "interactive", {"type": "card", "data": {"card_id": card_id}}),
    )
    assert sent.success(), sent.msg
    answer = "春日限定，樱花味拿铁上市。"
    for sequence, end in enumerate(range(2, len(answer) + 1, 4), start=1):
        pushed = await run(client.cardkit.v1.card_element.content, push_text(card_id, answer[:end], sequence))
        assert pushed.success(), pushed.msg
    last = fake.cards[card_id].last_sequence
    done = await run(client.cardkit.v1.card_element.content, push_text(card_id, answer, last + 1))
    stale = await run(client.cardkit.v1.card_element.content, push_text(card_id, answer, last))
    assert done.success() and (stale.code, stale.raw.status_code) == (300317, 400)
    assert fake.cards_left_generating() == [fake.cards[card_id]]
    closed = await run(client.cardkit.v1.card.settings, close_streaming(card_id, last + 2))
    assert closed.success(), closed.msg
    assert fake.cards_left_generating() == []
    after = await run(client.cardkit.v1.card_element.content, push_text(card_id, answer + "！", last + 3))
    assert after.code == 300309

    [message] = fake.bot_messages(group.chat_id)
    assert (message.card_id, message.text, message.root_id) == (card_id, answer, asked.message_id)
    card = fake.cards[card_id]
    assert [u.content for u in card.content_updates][-3:] == [answer, answer, answer + "！"]
    assert [u.code for u in card.content_updates][-3:] == [0, 300317, 300309]

    # A whole-card update (the final card with buttons) keeps the sequence rule too.
    final = {
        "schema": "2.0",
        "config": {"streaming_mode": False},
        "body": {
            "elements": [
                {"tag": "markdown", "content": answer, "element_id": "answer"},
                {
                    "tag": "button",
                    "text": {"tag": "plain_text", "content": "再写一版"},
                    "behaviors": [{"type": "callback", "value": {"action": "regenerate"}}],
                },
            ]
        },
    }
    update = (
        UpdateCardRequest.builder()
        .card_id(card_id)
        .request_body(
            UpdateCardRequestBody.builder()
            .card(Card.builder().type("card_json").data(json.dumps(final)).build())
            .sequence(last + 4)
            .build()
        )
        .build()
    )
    assert (await run(client.cardkit.v1.card.update, update)).success()
    assert fake.cards[card_id].element("answer")["content"] == answer


async def test_streaming_mode_closes_itself_after_ten_minutes() -> None:
    async with FakeFeishu(time_scale=0.0005) as fake:  # 10 minutes = 0.3 s
        client = sdk(fake)
        card_id = (await run(client.cardkit.v1.card.create, create_card(STREAMING_CARD))).data.card_id
        assert (await run(client.cardkit.v1.card_element.content, push_text(card_id, "第一句", 1))).success()
        card = fake.cards[card_id]
        await eventually(lambda: (card.expire(time.monotonic()), card.closed_by)[1] == "timeout", timeout=5)
        first = await run(client.cardkit.v1.card_element.content, push_text(card_id, "第一句，第二句", 2))
        later = await run(client.cardkit.v1.card_element.content, push_text(card_id, "第一句，第二句", 3))
        assert (first.code, first.msg) == (200850, "card streaming timeout")
        assert (later.code, later.msg) == (300309, "streaming mode is closed")
        assert fake.cards_left_generating() == [card], "closed by the timeout, never by the bot: still 生成中"
        reopened = await run(
            client.cardkit.v1.card.settings,
            SettingsCardRequest.builder()
            .card_id(card_id)
            .request_body(
                SettingsCardRequestBody.builder()
                .settings(json.dumps({"config": {"streaming_mode": True}}))
                .sequence(4)
                .build()
            )
            .build(),
        )
        assert (
            reopened.success()
            and (await run(client.cardkit.v1.card_element.content, push_text(card_id, "第一句，第二句", 5))).success()
        )


async def test_card_past_thirty_kilobytes_is_refused(fake: FakeFeishu) -> None:
    client = sdk(fake)
    card_id = (await run(client.cardkit.v1.card.create, create_card(STREAMING_CARD))).data.card_id
    fits = await run(client.cardkit.v1.card_element.content, push_text(card_id, "文" * 9000, 1))  # 27 KB
    too_big = await run(client.cardkit.v1.card_element.content, push_text(card_id, "文" * 11000, 2))  # 33 KB
    assert fits.success() and (too_big.code, too_big.msg) == (200860, "Card content exceeds limit.")
    assert fake.cards[card_id].element("answer")["content"] == "文" * 9000
    bad = dict(STREAMING_CARD, body={"elements": [{"tag": "markdown", "content": "x", "element_id": "1st"}]})
    assert (await run(client.cardkit.v1.card.create, create_card(bad))).code == 10002  # element_id starts with a letter


async def test_limits_answer_as_feishu_does() -> None:
    limits = FeishuLimits(api_per_second=4, card_per_second=10, chat_per_second=5)
    async with FakeFeishu(limits=limits) as fake:  # real seconds: sequential calls land in one window
        client = sdk(fake)
        group = fake.group_chat("g")
        sent = [await run(client.im.v1.message.create, text_to("chat_id", group.chat_id, f"#{i}")) for i in range(6)]
        assert [r.code for r in sent] == [0, 0, 0, 0, 99991400, 99991400]
        throttled = sent[-1]
        assert throttled.raw.status_code == 429 and not throttled.success()
        assert 0 < int(throttled.raw.headers["x-ogw-ratelimit-reset"]) <= 1
        assert throttled.raw.headers["x-ogw-ratelimit-limit"] == "4"
        assert fake.count_429 == 2 and len(fake.rate_limited) == 2

    async with FakeFeishu(time_scale=1.0) as fake:
        client = sdk(fake)
        group = fake.group_chat("g")
        sent = [await run(client.im.v1.message.create, text_to("chat_id", group.chat_id, f"#{i}")) for i in range(7)]
        assert [r.code for r in sent] == [0] * 5 + [230020] * 2  # 5 a second per group
        assert sent[-1].raw.status_code == 400 and "x-ogw-ratelimit-reset" not in sent[-1].raw.headers
        card_id = (await run(client.cardkit.v1.card.create, create_card(STREAMING_CARD))).data.card_id
        pushed = [
            await run(client.cardkit.v1.card_element.content, push_text(card_id, "字" * n, n)) for n in range(1, 13)
        ]
        assert [r.code for r in pushed] == [0] * 10 + [230020] * 2  # 10 operations a second per card
        assert fake.count_429 == 0 and len(fake.rate_limited) == 4


async def test_unknown_paths_and_missing_tokens_answer_in_feishu_json(fake: FakeFeishu) -> None:
    async with httpx.AsyncClient(base_url=fake.base_url) as http:
        missing = await http.get("/open-apis/im/v9/nothing")
        no_token = await http.post("/open-apis/im/v1/messages?receive_id_type=chat_id", json={})
    assert missing.status_code == 404 and missing.json()["code"] == 404
    assert no_token.status_code == 400 and no_token.json()["code"] == 99991663
    assert no_token.json()["error"]["log_id"] == no_token.headers["x-tt-logid"]


# ---- Long connection ----------------------------------------------------------------------


class SdkLongConnection:
    """``lark.ws.Client`` the way an async service must run it: in its own thread with its
    own event loop, installed as the SDK module's ``loop`` global (every method of the client
    uses that global; by default it is whatever loop was current when ``lark_oapi`` was first
    imported, so ``start()`` from inside a running loop fails with "This event loop is already
    running"). The client is constructed in the thread, because its constructor schedules a
    cache-cleaning task on the current loop. Stopping: cancel every task on that loop (``start()``
    then raises CancelledError), then close the socket with the client's ``_disconnect()``: the
    SDK has no public stop (its own FeishuChannel does the same)."""

    def __init__(self, fake: FakeFeishu, handler: lark.EventDispatcherHandler, *, secret: str | None = None) -> None:
        self.fake, self.handler, self.secret = fake, handler, secret or fake.app_secret
        self.client: lark.ws.Client | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self.reconnecting = self.reconnected = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lark-ws", daemon=True)

    def start(self) -> SdkLongConnection:
        self._thread.start()
        self._ready.wait(5)
        return self

    def _run(self) -> None:
        loop = self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        lark_ws_client.loop = loop
        client = self.client = lark.ws.Client(
            self.fake.app_id,
            self.secret,
            event_handler=self.handler,
            domain=self.fake.base_url,
            log_level=lark.LogLevel.CRITICAL,
        )
        client.on_reconnecting = lambda: setattr(self, "reconnecting", self.reconnecting + 1)
        client.on_reconnected = lambda: setattr(self, "reconnected", self.reconnected + 1)
        self._ready.set()
        try:
            client.start()
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # noqa: BLE001 - the test reads it
            self.error = exc
        finally:
            loop.run_until_complete(client._disconnect())
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    def _cancel_all(self) -> None:
        for task in asyncio.all_tasks(self.loop):
            task.cancel()

    async def stop(self) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._cancel_all)
        await asyncio.to_thread(self._thread.join, 5)
        assert not self._thread.is_alive()


def handing_off(
    received: asyncio.Queue, *, fail_on: str | None = None, slow_first: float = 0.0
) -> lark.EventDispatcherHandler:
    """A handler that hands each message event to the test's loop at once (as the adapter must:
    the ack goes out only when the handler returns)."""
    loop = asyncio.get_running_loop()
    calls = {"n": 0}

    def on_message(data: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1 and slow_first:
            time.sleep(slow_first)
        loop.call_soon_threadsafe(received.put_nowait, data)
        if fail_on and fail_on in data.event.message.content:
            raise RuntimeError("the bot's handler failed")

    return lark.EventDispatcherHandler.builder("", "").register_p2_im_message_receive_v1(on_message).build()


async def test_long_connection_delivers_and_records_the_ack(fake: FakeFeishu) -> None:
    received: asyncio.Queue = asyncio.Queue()
    connection = SdkLongConnection(fake, handing_off(received, fail_on="boom")).start()
    try:
        [conn] = await fake.ws.wait_connected()
        await eventually(lambda: conn.pings >= 1)  # the client pings at once, the fake answers with its config
        alice = fake.user("alice")
        group = fake.group_chat("市场部")
        asked, event = fake.events.text(group, alice, "@_user_1 写标题", mentions=[fake.bot])
        delivery = await fake.push_event(event)
        data = await asyncio.wait_for(received.get(), 5)
        assert delivery.acked and len(delivery.attempts) == 1 and 0 < delivery.ack_latency < 1
        assert data.header.event_id == event["header"]["event_id"]
        assert data.event.message.message_id == asked.message_id
        assert data.event.message.mentions[0].key == "@_user_1" and data.event.message.mentions[0].name == "Copy Helper"
        assert json.loads(data.event.message.content) == {"text": "@_user_1 写标题"}

        _, long_event = fake.events.post(group, alice, ["第一段" * 500, "第二段"], images=[b"png"])
        split = await fake.push_event(long_event, parts=3)  # one payload over three frames
        assert split.acked and (await asyncio.wait_for(received.get(), 5)).event.message.message_type == "post"

        _, failing = fake.events.text(group, alice, "boom")
        failed = await fake.push_event(failing)
        assert not failed.acked and [a.code for a in failed.attempts] == [500] * fake.ws.max_pushes
    finally:
        await connection.stop()
    await eventually(lambda: fake.ws.live == [])


async def test_a_slow_handler_gets_the_event_pushed_again() -> None:
    async with FakeFeishu(time_scale=SCALE) as fake:  # the 3 s ack wait is 30 ms here
        received: asyncio.Queue = asyncio.Queue()
        connection = SdkLongConnection(fake, handing_off(received, slow_first=0.3)).start()
        try:
            await fake.ws.wait_connected()
            alice = fake.user("alice")
            _, event = fake.events.text(fake.p2p_chat(alice), alice, "你好")
            delivery = await fake.push_event(event)
            first = await asyncio.wait_for(received.get(), 5)
            second = await asyncio.wait_for(received.get(), 5)
            assert len(delivery.attempts) >= 2
            assert first.header.event_id == second.header.event_id  # the same event twice: dedupe on event_id
        finally:
            await connection.stop()


async def test_reconnects_after_a_drop_and_a_refusal() -> None:
    async with FakeFeishu(time_scale=SCALE, ack_timeout=100) as fake:  # reconnect jitter <= 0.3 s, retry 1.2 s
        received: asyncio.Queue = asyncio.Queue()
        connection = SdkLongConnection(fake, handing_off(received)).start()
        try:
            [first] = await fake.ws.wait_connected()
            fake.ws.refuse_connections(0.5)
            assert await fake.ws.drop_connections() == 1
            [second] = await fake.ws.wait_connected(within=10)
            assert second.conn_id != first.conn_id and fake.ws.endpoint_calls >= 3  # refused at least once
            await eventually(lambda: (connection.reconnecting, connection.reconnected) == (1, 1))
            alice = fake.user("alice")
            _, event = fake.events.text(fake.p2p_chat(alice), alice, "还在吗")
            assert (await fake.push_event(event)).acked
        finally:
            await connection.stop()


async def test_a_refusal_by_credentials_during_reconnect_ends_reconnecting_for_good() -> None:
    """A ClientException while reconnecting (here: the app secret was rotated) kills the SDK's
    receive task: it never tries again, while start() keeps blocking as if all were well."""
    async with FakeFeishu(time_scale=0.001) as fake:  # reconnect retries every 0.12 s
        connection = SdkLongConnection(fake, handing_off(asyncio.Queue())).start()
        try:
            await fake.ws.wait_connected()
            before = fake.ws.endpoint_calls
            fake.ws.app_secret = "rotated in the console"
            await fake.ws.drop_connections()
            await eventually(lambda: fake.ws.endpoint_calls == before + 1)
            fake.ws.app_secret = fake.app_secret  # the old secret works again: no matter
            with pytest.raises(AssertionError):
                await fake.ws.wait_connected(within=1.0)  # eight retry intervals
            assert fake.ws.endpoint_calls == before + 1 and connection.error is None
            assert (connection.reconnecting, connection.reconnected) == (1, 0)
        finally:
            await connection.stop()


async def test_a_wrong_secret_ends_start_with_client_exception(fake: FakeFeishu) -> None:
    connection = SdkLongConnection(fake, handing_off(asyncio.Queue()), secret="wrong").start()
    await eventually(lambda: connection.error is not None)
    await connection.stop()
    assert isinstance(connection.error, ClientException) and connection.error.code == 10014
    assert fake.ws.connections == []


async def test_card_button_callback_answers_through_the_ack(fake: FakeFeishu) -> None:
    pressed: list[Any] = []

    def on_action(data: Any) -> P2CardActionTriggerResponse:
        pressed.append(data)
        return P2CardActionTriggerResponse({"toast": {"type": "info", "content": "正在重新生成"}})

    handler = lark.EventDispatcherHandler.builder("", "").register_p2_card_action_trigger(on_action).build()
    connection = SdkLongConnection(fake, handler).start()
    try:
        await fake.ws.wait_connected()
        alice = fake.user("alice")
        group = fake.group_chat("g")
        card_message = fake.store_user_message(group, alice, "interactive", json.dumps(STREAMING_CARD))
        delivery = await fake.push_event(fake.events.card_action(card_message, alice, {"action": "regenerate"}))
        assert delivery.acked and delivery.response == {"toast": {"type": "info", "content": "正在重新生成"}}
        [data] = pressed
        assert data.event.action.value == {"action": "regenerate"}
        assert data.event.context.open_message_id == card_message.message_id
        assert data.event.operator.open_id == alice.open_id
    finally:
        await connection.stop()


async def test_the_sdk_leaves_card_typed_frames_unanswered() -> None:
    """lark-oapi 1.7.5 returns without an ack for a frame of type "card": were Feishu to send
    card callbacks that way, each would be pushed again and again and never reach the handler."""
    async with FakeFeishu(time_scale=SCALE) as fake:
        pressed: list[Any] = []
        handler = lark.EventDispatcherHandler.builder("", "").register_p2_card_action_trigger(pressed.append).build()
        connection = SdkLongConnection(fake, handler).start()
        try:
            await fake.ws.wait_connected()
            alice = fake.user("alice")
            message = fake.store_user_message(fake.p2p_chat(alice), alice, "text", json.dumps({"text": "x"}))
            delivery = await fake.push_event(fake.events.card_action(message, alice, {"a": 1}), frame_type="card")
            assert not delivery.acked and len(delivery.attempts) == fake.ws.max_pushes
            assert all(a.code is None for a in delivery.attempts) and pressed == []
        finally:
            await connection.stop()


async def test_events_go_to_one_connection_at_a_time(fake: FakeFeishu) -> None:
    """Feishu gives each event to one of an app's connections: with two, they alternate."""
    received: asyncio.Queue = asyncio.Queue()
    connection = SdkLongConnection(fake, handing_off(received)).start()
    raw_frames: list[dict] = []
    try:
        await fake.ws.wait_connected()
        async with httpx.AsyncClient() as http:
            url = (
                await http.post(
                    f"{fake.base_url}/callback/ws/endpoint", json={"AppID": fake.app_id, "AppSecret": fake.app_secret}
                )
            ).json()["data"]["URL"]
        async with websockets.connect(url) as other:
            await fake.ws.wait_connected(2)

            async def acknowledge() -> None:
                async for data in other:
                    frame, headers = decode_frame(data)
                    if frame.method == DATA:
                        raw_frames.append(headers)
                        await other.send(
                            encode_frame(
                                method=DATA,
                                service=frame.service,
                                seq_id=frame.SeqID,
                                log_id=frame.LogID,
                                headers=headers,
                                payload=json.dumps({"code": 200}).encode(),
                            )
                        )

            acking = asyncio.create_task(acknowledge())
            alice = fake.user("alice")
            deliveries = [
                await fake.push_event(fake.events.text(fake.p2p_chat(alice), alice, f"#{i}")[1]) for i in range(4)
            ]
            acking.cancel()
        assert all(d.acked for d in deliveries)
        assert len({d.attempts[0].conn_id for d in deliveries}) == 2
        assert len(raw_frames) == 2 and received.qsize() == 2
        assert all(h["type"] == "event" and h["sum"] == "1" for h in raw_frames)
    finally:
        await connection.stop()


# ---- HTTP callback ----------------------------------------------------------------------


async def test_encrypted_callback_through_the_sdk_dispatcher(fake: FakeFeishu) -> None:
    """A tiny starlette endpoint handing the request to the SDK's EventDispatcherHandler.do().
    RawRequest.headers must answer ``get("X-Lark-Signature")`` in that case: pass starlette's
    case-insensitive Headers, not ``dict(request.headers)`` (lower-case keys: the signature
    check then fails with a 500)."""
    key, token = "fake-encrypt-key", fake.verification_token
    received: list[Any] = []
    dispatcher = (
        lark.EventDispatcherHandler.builder(key, token, lark.LogLevel.CRITICAL)
        .register_p2_im_message_receive_v1(received.append)
        .build()
    )

    plain_dispatcher = (
        lark.EventDispatcherHandler.builder("", token, lark.LogLevel.CRITICAL)
        .register_p2_im_message_receive_v1(received.append)
        .build()
    )

    def endpoint(handler: lark.EventDispatcherHandler) -> Callable[[Request], Any]:
        async def events(request: Request) -> Response:
            raw = RawRequest()
            raw.uri, raw.body, raw.headers = request.url.path, await request.body(), request.headers
            answer = handler.do(raw)
            return Response(answer.content, status_code=answer.status_code, media_type="application/json")

        return events

    port = free_port()
    app = Starlette(
        routes=[
            Route("/feishu/events", endpoint(dispatcher), methods=["POST"]),
            Route("/feishu/plain", endpoint(plain_dispatcher), methods=["POST"]),
        ]
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started)
        url = f"http://127.0.0.1:{port}/feishu/events"
        challenge = fake.events.url_verification()
        verified = await fake.deliver_http(url, challenge, encrypt_key=key)
        assert verified.status == 200 and verified.response_json() == {"challenge": challenge["challenge"]}
        assert json.loads(verified.body).keys() == {"encrypt"}

        alice = fake.user("alice")
        asked, event = fake.events.text(fake.p2p_chat(alice), alice, "写一条朋友圈文案")
        delivered = await fake.deliver_http(url, event, encrypt_key=key)
        assert delivered.status == 200 and delivered.latency is not None
        [data] = received
        assert data.event.message.message_id == asked.message_id

        forged = await fake.deliver_http(url, event, encrypt_key=key, signature_key="not-the-key")
        wrong_token = await fake.deliver_http(url, event, encrypt_key=key, verification_token="stolen")
        assert (forged.status, wrong_token.status) == (500, 500)  # the SDK refuses with a 500, not a 4xx
        assert len(received) == 1

        # An app without an Encrypt Key: plain JSON, no signature, the token in the header.
        plain_url = f"http://127.0.0.1:{port}/feishu/plain"
        plain = await fake.deliver_http(plain_url, event)
        assert plain.status == 200 and json.loads(plain.body)["header"]["token"] == token
        assert "X-Lark-Signature" not in plain.headers and len(received) == 2
        assert (await fake.deliver_http(plain_url, event, verification_token="stolen")).status == 500
    finally:
        server.should_exit = True
        await serving
