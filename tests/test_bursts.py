"""Bursts answered as one turn (docs/platform-features.md): a file sent without text and the
same person's text within ``BOT_BURST_WINDOW`` — in either order — are one stored user
message and one answer. The core through the one door (``PlatformInbox``), as an adapter
hands messages in, against the fake gateway; what is stored is asserted row by row."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from bot.config import Settings
from bot.platform.inbox import Arrival
from bot.platform.messages import Attachment, Author, ConversationKey, IncomingMessage
from bot.store.models import Message, Part, Turn
from tests.conformance.drivers import PNG
from tests.fakes.gateway import Answer, last_user_text
from tests.platforms import inbox_for
from tests.polling import eventually
from tests.surfaces import RecordingSurface

WINDOW = 1.0
KEY = ConversationKey("console", "local", "bursts")
ALICE, BOB = Author("alice", "Alice"), Author("bob", "Bob")


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(BOT_BURST_WINDOW=WINDOW)


class Chat:
    """One conversation as an adapter hands it in: each message gets its own event id."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.inbox = inbox_for(runtime, "console")
        self.surface = RecordingSurface()
        self.sent = 0

    def send(
        self, text: str = "", *, image: bytes | None = None, author: Author = ALICE, event_id: str = ""
    ) -> asyncio.Task[None]:
        self.sent += 1
        msg = IncomingMessage(
            KEY,
            author,
            text,
            message_id=f"m{self.sent}",
            attachments=[Attachment(image, "image/png", "photo.png")] if image else [],
        )

        async def build() -> IncomingMessage:
            return msg

        return self.inbox.receive(Arrival(KEY, event_id or f"e{self.sent}", author, self.surface), build)

    async def rows(self) -> list[tuple[Any, ...]]:
        """Every stored message: (seq, role, status, author, platform id, its parts)."""
        async with self.runtime.db.read() as conn:
            messages = (
                await conn.execute(
                    select(
                        Message.id,
                        Message.seq,
                        Message.role,
                        Message.status,
                        Message.author_id,
                        Message.platform_message_id,
                    ).order_by(Message.seq)
                )
            ).all()
            parts = (
                await conn.execute(
                    select(Part.message_id, Part.kind, Part.text, Part.data).order_by(Part.message_id, Part.idx)
                )
            ).all()
        return [
            (
                m.seq,
                m.role,
                m.status,
                m.author_id,
                m.platform_message_id,
                [(p.kind, p.text, _short(p.data)) for p in parts if p.message_id == m.id],
            )
            for m in messages
        ]

    async def turns(self) -> list[str]:
        async with self.runtime.db.read() as conn:
            return [r.status for r in (await conn.execute(select(Turn.status).order_by(Turn.id))).all()]


def _short(data: dict | None) -> dict | None:
    """A part's data without an image's size (the same for every test image)."""
    return {k: v for k, v in data.items() if k not in ("width", "height")} if data else data


def user_blocks(body: dict) -> list[str]:
    [*_, last] = [m for m in body["messages"] if m["role"] == "user"]
    content = last["content"]
    return [content] if isinstance(content, str) else [b.get("text", b["type"]) for b in content]


async def test_a_photo_then_its_question_are_one_stored_message_and_one_turn(runtime, fake_gateway) -> None:
    chat = Chat(runtime)
    started = time.monotonic()
    photo = chat.send(image=PNG)
    question = chat.send("what is in this picture?")
    await asyncio.gather(photo, question)
    await runtime.service.drain()
    assert time.monotonic() - started < WINDOW / 2  # answered once the question came, not at the window's end
    [request] = fake_gateway.requests
    assert user_blocks(request.body) == ["what is in this picture?", "image_url"]
    assert chat.surface.texts == ["echo: what is in this picture?"]
    assert await chat.rows() == [
        (
            1,
            "user",
            "answered",
            "alice",
            "m1",
            [("image", None, {"filename": "photo.png"}), ("text", "what is in this picture?", {"message_id": "m2"})],
        ),  # both platform ids kept
        (
            2,
            "assistant",
            "complete",
            "",
            "",
            [
                ("text", "echo: what is in this picture?", None),
                ("reasoning", "The user wrote something; echo it.", None),
            ],
        ),
    ]


async def test_a_question_then_its_photo_ask_again_while_nothing_shows(runtime, fake_gateway) -> None:
    chat = Chat(runtime)
    gate = asyncio.Event()
    fake_gateway.script(Answer(text="about the words alone", wait_for=gate))
    question = chat.send("describe this photo")
    await fake_gateway.wait_for_requests(1)  # its answer has started; no text shows yet
    photo = chat.send(image=PNG)
    await asyncio.gather(question, photo)
    await runtime.service.drain()
    gate.set()
    assert user_blocks(fake_gateway.last.body) == ["describe this photo", "image_url"]
    assert chat.surface.texts == ["echo: describe this photo"]  # the first answer never showed
    assert await chat.rows() == [
        (
            1,
            "user",
            "answered",
            "alice",
            "m1",
            [("text", "describe this photo", None), ("image", None, {"filename": "photo.png", "message_id": "m2"})],
        ),
        (
            3,
            "assistant",
            "complete",
            "",
            "",
            [("text", "echo: describe this photo", None), ("reasoning", "The user wrote something; echo it.", None)],
        ),
    ]  # seq 2 was the set-aside answer's place: it wrote nothing
    assert await chat.turns() == ["stopped", "complete"]


async def test_a_photo_after_the_answer_shows_text_is_its_own_turn(runtime, fake_gateway) -> None:
    chat = Chat(runtime)
    gate = asyncio.Event()
    fake_gateway.script(Answer(text="a first answer, in pieces", chunk_size=4, pause_after=2, wait_for=gate))
    question = chat.send("describe the plan")
    await eventually(lambda: chat.surface.texts)  # the user reads the answer already
    photo = chat.send(image=PNG)
    gate.set()
    await asyncio.gather(question, photo)
    await runtime.service.drain()
    assert chat.surface.texts[0] == "a first answer, in pieces"
    assert [
        (seq, role, [k for k, _, _ in parts]) for seq, role, _, _, _, parts in await chat.rows() if role == "user"
    ] == [(1, "user", ["text"]), (3, "user", ["image"])]
    assert await chat.turns() == ["complete", "complete"]


async def test_photos_one_by_one_then_the_question_are_one_message(runtime, fake_gateway) -> None:
    chat = Chat(runtime)
    tasks = [chat.send(image=PNG), chat.send(image=PNG), chat.send("which one is brighter?")]
    await asyncio.gather(*tasks)
    await runtime.service.drain()
    [request] = fake_gateway.requests
    assert user_blocks(request.body) == ["which one is brighter?", "image_url", "image_url"]
    [(_, _, status, _, _, parts)] = [row for row in await chat.rows() if row[1] == "user"]
    assert status == "answered" and [(k, (d or {}).get("message_id")) for k, _, d in parts] == [
        ("image", None),
        ("image", "m2"),
        ("text", "m3"),
    ]


async def test_a_redelivered_photo_does_not_end_the_burst(runtime, fake_gateway) -> None:
    chat = Chat(runtime)
    photo = chat.send(image=PNG, event_id="photo")
    again = chat.send(image=PNG, event_id="photo")  # the platform delivers the event again
    question = chat.send("and this?")
    await asyncio.gather(photo, again, question)
    await runtime.service.drain()
    [request] = fake_gateway.requests
    assert user_blocks(request.body) == ["and this?", "image_url"]
    assert [len(parts) for _, role, _, _, _, parts in await chat.rows() if role == "user"] == [2]


async def test_someone_else_in_between_ends_the_burst(runtime, fake_gateway) -> None:
    chat = Chat(runtime)
    tasks = [chat.send(image=PNG), chat.send("nice!", author=BOB), chat.send("what is it?")]
    await asyncio.gather(*tasks)
    await runtime.service.drain()
    users = [(author, [k for k, _, _ in parts]) for _, role, _, author, _, parts in await chat.rows() if role == "user"]
    assert users == [("alice", ["image"]), ("bob", ["text"]), ("alice", ["text"])]


async def test_a_text_alone_is_answered_at_once_and_a_photo_alone_after_the_window(runtime, fake_gateway) -> None:
    chat = Chat(runtime)
    started = time.monotonic()
    await chat.send("hello")
    text_took = time.monotonic() - started
    assert text_took < WINDOW / 2  # no wait for a follower that never comes
    started = time.monotonic()
    await chat.send(image=PNG)
    photo_took = time.monotonic() - started
    assert photo_took >= WINDOW * 0.9  # it waited for a question that never came, then was answered
    assert last_user_text(fake_gateway.last.body) == "(image)"
    assert len(chat.surface.texts) == 2


async def test_a_telegram_album_then_its_question_are_one_turn(start_bot, tg, fake_gateway) -> None:
    """The adapter merges the album (its later items' events build nothing); the burst is on top."""
    from tests.telegram_harness import ALICE as TG_ALICE
    from tests.telegram_harness import answered

    bot = await start_bot()
    for _ in range(2):
        tg.send_user_message(
            TG_ALICE["id"], TG_ALICE, None, extra={"photo": tg.photo_sizes(PNG), "media_group_id": "album-1"}
        )
    tg.send_user_message(TG_ALICE["id"], TG_ALICE, "which of these two is sharper?")
    await answered(tg, TG_ALICE["id"])
    await bot.settle()
    [request] = fake_gateway.requests
    assert user_blocks(request.body) == ["which of these two is sharper?", "image_url", "image_url"]
