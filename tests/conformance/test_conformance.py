"""What every platform must do, the same way: each driver (``drivers.py``) runs the bot as
`bot run` does against its platform's fake and acts as that platform's users do.

A message is answered; the same event delivered again is answered once; an image reaches
the model; Stop and Regenerate work; a sender outside the allowlist gets one polite refusal
and nothing is downloaded or stored; a second message waits for the first answer; SIGTERM
mid-answer finalises the answer and loses nothing; a command runs, an unknown one is told
so and never reaches the model; a photo without a caption and its question (either order,
within ``BOT_BURST_WINDOW``, from the same person) are one turn.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.core import texts
from bot.platform.controls import ControlKind, Press
from bot.store.models import Message, Turn
from bot.usage.access import NOT_ALLOWED_TEXT
from tests.conformance.drivers import ALICE, DRIVERS, MALLORY, PNG, Driver
from tests.fakes.gateway import Answer, FakeGateway, last_user_text

THINK = "Let me think about this."


@pytest.fixture(params=sorted(DRIVERS))
async def platform(
    request: pytest.FixtureRequest, make_settings: Callable, fake_gateway: FakeGateway, tmp_path: Path
) -> AsyncIterator[Driver]:
    fake_gateway.default = echo  # group chats prefix each message with its sender's name
    driver = DRIVERS[request.param](make_settings, fake_gateway, tmp_path)
    yield driver
    await driver.stop()


def echo(body: dict) -> Answer:
    text = re.sub(r"^\[[^\]]+\] ", "", last_user_text(body))
    return Answer(text=f"echo: {text}", reasoning=THINK)


def kinds(data: list[str]) -> list[str]:
    return [p.kind for d in data if (p := Press.decode(d)) is not None]


def of_kind(data: list[str], kind: str) -> str:
    return next(d for d in data if (p := Press.decode(d)) is not None and p.kind == kind)


async def test_a_message_is_answered(platform: Driver, fake_gateway: FakeGateway) -> None:
    await platform.start()
    await platform.send("what is our slogan?")
    await platform.settle()
    assert platform.transcript() == ["echo: what is our slogan?"]
    assert len(fake_gateway.requests) == 1
    assert {"regen", "fb"} <= set(kinds(platform.controls()))  # a finished answer offers them


async def test_the_same_event_delivered_again_is_answered_once(platform: Driver, fake_gateway: FakeGateway) -> None:
    await platform.start()
    sent = await platform.send("hello once")
    await platform.settle()
    await platform.redeliver(sent)
    await platform.settle()
    assert platform.transcript() == ["echo: hello once"]
    assert len(fake_gateway.requests) == 1
    [stored] = await platform.rows(select(Message.id).where(Message.role == "user"))
    assert stored


async def test_an_image_reaches_the_model(platform: Driver, fake_gateway: FakeGateway) -> None:
    await platform.start()
    await platform.send("what is in this picture?", image=PNG)
    await platform.settle()
    content = fake_gateway.last.body["messages"][-1]["content"]
    assert isinstance(content, list) and any(b.get("type") == "image_url" for b in content)
    assert "what is in this picture?" in last_user_text(fake_gateway.last.body)
    assert len(platform.transcript()) == 1
    if platform.has_downloads:
        assert platform.downloads() >= 1


async def test_stop_ends_a_streaming_answer_and_regenerate_writes_a_new_one(
    platform: Driver, fake_gateway: FakeGateway
) -> None:
    await platform.start()
    gate = fake_gateway.hold()
    fake_gateway.script(Answer(text="a long answer " * 40, reasoning=THINK, chunk_size=6, pause_after=8, wait_for=gate))
    await platform.send("tell me a long story")
    stop = await platform.until(
        lambda: ControlKind.STOP in kinds(platform.controls()) and of_kind(platform.controls(), ControlKind.STOP)
    )
    await platform.click(stop)
    await platform.settle()
    fake_gateway.release()
    [stopped] = platform.transcript()
    assert stopped.startswith("a long") and stopped.rstrip().rstrip("_").endswith(texts.STOPPED.strip("_"))
    [turn] = await platform.rows(select(Turn.status))
    assert turn.status == "stopped"
    fake_gateway.script(Answer(text="a shorter story", reasoning=THINK))
    await platform.click(of_kind(platform.controls(), ControlKind.REGENERATE))
    await platform.settle()
    assert platform.transcript()[-1] == "a shorter story"
    assert "tell me a long story" in last_user_text(fake_gateway.last.body)


async def test_a_sender_outside_the_allowlist_is_refused_once_and_nothing_is_fetched(
    platform: Driver, fake_gateway: FakeGateway
) -> None:
    await platform.start(allow_only=ALICE)
    await platform.send("let me in", user=MALLORY, image=PNG)
    await platform.send("please?", user=MALLORY)
    await platform.settle()
    assert platform.transcript() == [NOT_ALLOWED_TEXT]  # told once, politely; not flooded
    assert platform.downloads() == 0  # access is decided before any file is fetched
    assert fake_gateway.requests == []
    assert await platform.rows(select(Message.id)) == []  # nothing of theirs is stored
    await platform.send("hello", user=ALICE)
    await platform.settle()
    assert platform.transcript()[-1].startswith("echo:") and platform.transcript()[-1].endswith("hello")


async def test_a_second_message_waits_for_the_first_answer(platform: Driver, fake_gateway: FakeGateway) -> None:
    await platform.start()
    gate = fake_gateway.hold()
    fake_gateway.script(
        Answer(text="first answer, slowly", reasoning=THINK, chunk_size=5, pause_after=2, wait_for=gate)
    )
    await platform.send("first question")
    await fake_gateway.wait_for_requests(1)
    await platform.send("second question")
    fake_gateway.release()
    await platform.settle()
    assert platform.transcript() == ["first answer, slowly", "echo: second question"]
    asked = [last_user_text(r.body) for r in fake_gateway.requests]
    assert asked[0].endswith("first question") and asked[1].endswith("second question")


async def test_sigterm_mid_answer_finalises_it_and_loses_nothing(platform: Driver, fake_gateway: FakeGateway) -> None:
    await platform.start(BOT_SHUTDOWN_GRACE=0.3)
    gate = fake_gateway.hold()
    fake_gateway.script(Answer(text="words " * 60, reasoning=THINK, chunk_size=6, pause_after=14, wait_for=gate))
    await platform.send("a long one please")
    await platform.until(lambda: platform.transcript())
    await platform.send("and then this")  # waits behind the answer being written
    await platform.shutdown()  # what SIGTERM runs
    fake_gateway.release()
    [answer] = platform.transcript()
    # The marker is Markdown italics: rendered by the platform, so its underscores may go.
    assert answer.rstrip().rstrip("_").endswith(texts.SHUTDOWN_MARKER.strip("_")) and answer.startswith("words")
    statuses = {row.status for row in await platform.rows(select(Turn.status))}
    assert statuses == {"interrupted"}  # finalised: nothing left streaming
    questions = await platform.rows(select(Message.status).where(Message.role == "user").order_by(Message.seq))
    # The answered question is kept; the one that waited stays pending for the next process.
    assert [q.status for q in questions] == ["answered", "pending"]


async def test_a_command_runs_and_an_unknown_one_never_reaches_the_model(
    platform: Driver, fake_gateway: FakeGateway
) -> None:
    await platform.start()
    await platform.send("/help")
    await platform.send("/stlye xiaohongshu")
    await platform.settle()
    help_text, unknown = platform.transcript()
    assert "/new" in help_text
    assert "/stlye" in unknown and "/style" in unknown  # the closest known one
    assert fake_gateway.requests == []


def user_contents(body: dict) -> list[list[str]]:
    """Each user message of a request as its blocks ("image", "text: …"; in the order the
    prompt puts them, text first)."""
    shown = []
    for message in body["messages"]:
        if message.get("role") != "user":
            continue
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        texts = [re.sub(r"^\[[^\]]+\] ", "", b["text"]).strip() for b in blocks if b["type"] == "text"]
        # A message with no text shows as "(image)" (or a group's bare "[name]"): no text of the user's.
        shown.append(
            [f"text: {t}" for t in texts if t not in ("", "(image)")] + ["image" for b in blocks if b["type"] != "text"]
        )
    return shown


async def user_rows(platform: Driver) -> list[tuple[str, list[str]]]:
    """Stored user messages after the opening one, as (author, the kinds of their parts)."""
    from bot.store.models import Part

    rows = await platform.rows(
        select(Message.id, Message.author_id).where(Message.role == "user").order_by(Message.seq)
    )
    parts = await platform.rows(select(Part.message_id, Part.kind).order_by(Part.message_id, Part.idx))
    return [(row.author_id, [p.kind for p in parts if p.message_id == row.id]) for row in rows][1:]


async def opened(platform: Driver, fake_gateway: FakeGateway, **core: object) -> None:
    """The bot started and the conversation opened (a thread the bot is in, on Slack)."""
    await platform.start(**core)  # type: ignore[arg-type]
    await platform.send("hello")
    await platform.settle()
    fake_gateway.requests.clear()


async def test_an_image_then_its_question_are_one_turn(platform: Driver, fake_gateway: FakeGateway) -> None:
    await opened(platform, fake_gateway)
    await platform.send("", image=PNG)  # a photo with no caption…
    await platform.send("what is in this picture?")  # …and the question a moment later
    await platform.settle()
    [request] = fake_gateway.requests  # not "what should I do with this image?" first
    assert user_contents(request.body)[-1] == ["text: what is in this picture?", "image"]
    assert platform.transcript()[1:] == ["echo: what is in this picture?"]
    [(_, kinds)] = await user_rows(platform)  # one stored message holding both
    assert kinds == ["image", "text"]


async def test_a_question_then_its_image_are_one_turn(platform: Driver, fake_gateway: FakeGateway) -> None:
    await opened(platform, fake_gateway)
    gate = asyncio.Event()  # the first answer shows nothing before the image comes
    fake_gateway.script(
        Answer(
            text="about the text alone",
            reasoning=THINK,
            reasoning_style="reasoning_content",
            chunk_size=8,
            pause_after=3,
            wait_for=gate,
        )
    )  # it thinks, then waits
    await platform.send("describe this photo")
    await fake_gateway.wait_for_requests(2)  # the opening's and this one's
    await platform.send("", image=PNG)
    await platform.settle()
    gate.set()
    # The question is asked again with the image; what the user reads answers both.
    assert user_contents(fake_gateway.last.body)[-1] == ["text: describe this photo", "image"]
    assert platform.transcript()[1:] == ["echo: describe this photo"]
    assert platform.messages() == 2  # no "thinking" message of the set-aside turn left behind
    [(_, kinds)] = await user_rows(platform)
    assert kinds == ["text", "image"]
    states = [row.status for row in await platform.rows(select(Turn.status).order_by(Turn.id))][1:]
    assert states == ["stopped", "complete"]  # the first, set aside unseen, is kept with its usage


async def test_an_image_then_text_after_the_window_are_two_turns(platform: Driver, fake_gateway: FakeGateway) -> None:
    await opened(platform, fake_gateway, BOT_BURST_WINDOW=0.3)
    await platform.send("", image=PNG)
    assert platform.host is not None and platform.host.runtime is not None
    bursts = platform.host.runtime.service.bursts
    await platform.until(lambda: bursts.open == 0)  # the window passed
    await platform.send("what is in this picture?")
    await platform.settle()
    # Two messages: a private chat answers the image alone, a group keeps it as context.
    assert [kinds for _, kinds in await user_rows(platform)] == [["image"], ["text"]]


async def test_someone_elses_text_after_an_image_is_not_merged(platform: Driver, fake_gateway: FakeGateway) -> None:
    await opened(platform, fake_gateway)
    await platform.send("", image=PNG)
    await platform.send("what is in this picture?", user=MALLORY)
    await platform.settle()
    rows = await user_rows(platform)
    assert [kinds for _, kinds in rows] == [["image"], ["text"]] and rows[0][0] != rows[1][0]
