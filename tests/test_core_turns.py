"""The conversation core end to end: real store, real gateway client, fake gateway server."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.platform.controls import Action, ControlKind, Press
from bot.platform.messages import Attachment, Author, ConversationKey, IncomingMessage
from bot.process.runtime import build_runtime
from bot.store.models import Message, Part, Turn
from tests.conftest import PG_URL
from tests.fakes.gateway import Answer
from tests.polling import eventually
from tests.surfaces import RecordingSurface

KEY = ConversationKey("console", "local", "alice")


ALICE = Author("alice", "Alice")


def press(kind: ControlKind, turn_id: int, *args: str) -> Action:
    return Action(Press(kind, turn_id, args), ALICE, KEY)


class OneChat:
    """A platform with one chat: the surface a restarted process writes the repair to."""

    name = "console"

    def __init__(self, surface: RecordingSurface) -> None:
        self.surface = surface

    def surface_for(self, key: ConversationKey, *, reply_to: str = "", user: str = "") -> RecordingSurface:
        return self.surface


def msg(text: str, *, key: ConversationKey = KEY, author: str = "alice", **kw) -> IncomingMessage:
    return IncomingMessage(key=key, author=Author(author, author.title()), text=text, message_id=f"m-{text[:10]}", **kw)


async def rows(service, model, *where):
    async with AsyncSession(service.store.db.engine) as session:
        return [(obj,) for obj in (await session.scalars(select(model).where(*where))).all()]


def user_texts(body: dict) -> list[str]:
    out = []
    for m in body["messages"]:
        if m["role"] == "user":
            c = m["content"]
            out.append(c if isinstance(c, str) else " ".join(b.get("text", "") for b in c))
    return out


async def test_streamed_answer_hides_reasoning_and_is_stored(service, fake_gateway) -> None:
    fake_gateway.script(Answer(text="Hello **there**, how can I help?", reasoning="The user greets me.", chunk_size=3))
    surface = RecordingSurface()
    await service.handle(msg("hi"), surface)
    assert surface.texts == ["Hello **there**, how can I help?"]
    assert all("greets" not in h for m in surface.messages.values() for h in m.history)
    assert surface.messages["1"].final
    assert "thinking…" in surface.statuses and surface.statuses[-1] == ""
    turn = (await rows(service, Turn))[0][0]
    assert turn.status == "complete" and turn.finish_reason == "stop"
    assert turn.prompt_tokens and turn.completion_tokens is not None
    parts = [r[0] for r in await rows(service, Part)]
    kinds = sorted(p.kind for p in parts)
    assert kinds == ["reasoning", "text", "text"]
    assert any(p.kind == "reasoning" and "greets" in p.text for p in parts)


async def test_history_survives_a_restart(settings, fake_gateway) -> None:
    rt = await build_runtime(settings, migrate=False)
    try:
        await rt.service.handle(msg("my name is Alice"), RecordingSurface())
    finally:
        await rt.close()
    rt = await build_runtime(settings, migrate=False)
    try:
        await rt.service.handle(msg("what is my name?"), RecordingSurface())
    finally:
        await rt.close()
    body = fake_gateway.requests[-1].body
    assert user_texts(body) == ["my name is Alice", "what is my name?"]
    assert body["messages"][0]["role"] == "system"
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]


async def test_user_message_is_stored_before_a_failing_model_and_the_user_is_told(service, fake_gateway) -> None:
    fake_gateway.script(Answer(status=401, error_body={"error": {"message": "invalid api key"}}))
    surface = RecordingSurface()
    await service.handle(msg("are you there?"), surface)
    assert "API key was rejected" in surface.transcript
    stored = [r[0] for r in await rows(service, Message, Message.role == "user")]
    assert len(stored) == 1
    turn = (await rows(service, Turn))[0][0]
    assert turn.status == "error" and "401" in (turn.error or "")


async def test_messages_sent_mid_answer_are_answered_next_together(service, fake_gateway) -> None:
    release = asyncio.Event()
    fake_gateway.script(Answer(text="first answer", reasoning="hm", wait_for=release), Answer(text="second answer"))
    surface = RecordingSurface()
    first = asyncio.create_task(service.handle(msg("question one"), surface))
    await fake_gateway.wait_for_requests(1)
    await service.handle(msg("also this"), surface)  # queued: returns at once
    await service.handle(msg("and that"), surface)
    release.set()
    await first
    assert len(fake_gateway.requests) == 2
    second_prompt = user_texts(fake_gateway.requests[1].body)
    assert second_prompt[-1] == "also this\n\nand that"
    assert surface.texts == ["first answer", "second answer"]
    statuses = {r[0].status for r in await rows(service, Message, Message.role == "user")}
    assert statuses == {"answered"}


async def test_new_starts_a_fresh_thread(service, fake_gateway) -> None:
    surface = RecordingSurface()
    await service.handle(msg("remember the word apple"), surface)
    await service.handle(msg("/new"), surface)
    assert "new conversation" in surface.texts[-1].lower()
    await service.handle(msg("which word?"), surface)
    assert user_texts(fake_gateway.requests[-1].body) == ["which word?"]


async def test_stream_cut_mid_answer_keeps_the_partial_text(service, fake_gateway) -> None:
    fake_gateway.script(
        Answer(
            text="This is a long answer that will be cut somewhere in the middle.",
            chunk_size=5,
            cut_after=8,
            reasoning="Let me think.",
        )
    )
    surface = RecordingSurface()
    await service.handle(msg("tell me"), surface)
    shown = surface.transcript
    partial, _, marker = shown.partition("\n\n")
    assert partial and "This is a long answer that will be cut somewhere in the middle.".startswith(partial)
    assert "interrupted" in marker and "connection" in marker
    turn = (await rows(service, Turn))[0][0]
    assert turn.status == "interrupted"
    answer = [r[0] for r in await rows(service, Message, Message.role == "assistant")][0]
    assert answer.status == "interrupted"


async def test_long_answer_continues_in_new_messages_within_the_limit(service, fake_gateway) -> None:
    paragraph = "这是一个很长的段落，用来测试拆分。" * 20 + "😀\n\n"
    text = paragraph * 12
    fake_gateway.script(Answer(text=text, chunk_size=40, reasoning="plan"))
    surface = RecordingSurface(max_chars=1000)
    await service.handle(msg("write a lot"), surface)
    assert not surface.violations
    assert len(surface.texts) >= 4
    assert all(len(t) <= 1000 for t in surface.texts)
    assert "".join(t.replace("\n", "") for t in surface.texts) == text.replace("\n", "")
    assert all(m.final for m in surface.messages.values())


async def test_rate_limited_writes_still_end_with_the_whole_answer(service, fake_gateway) -> None:
    text = "word " * 300
    fake_gateway.script(Answer(text=text, chunk_size=7, chunk_delay=0.003, reasoning="ok"))
    surface = RecordingSurface(rate_limit_every=3, retry_after=0.02)
    await service.handle(msg("go"), surface)
    assert surface.rate_limited > 0
    assert surface.texts == [text.strip()]
    assert not surface.violations


async def test_stop_keeps_what_was_written(service, fake_gateway) -> None:
    fake_gateway.script(Answer(text="x" * 2000, chunk_size=10, chunk_delay=0.01, reasoning="long one"))
    surface = RecordingSurface()
    task = asyncio.create_task(service.handle(msg("long please"), surface))
    await eventually(lambda: surface.order)
    turn_id = surface.writes[0].turn_id
    assert (await service.act(press(ControlKind.STOP, turn_id), surface)).text == "Stopping…"
    await task
    assert (await service.act(press(ControlKind.STOP, turn_id), surface)).text == "This answer is already finished."
    final = surface.texts[-1]
    assert final.endswith("_(stopped)_") and final.startswith("xxx")
    turn = (await rows(service, Turn))[0][0]
    assert turn.status == "stopped"


async def test_restart_mid_answer_is_finalised_as_interrupted(settings, fake_gateway) -> None:
    fake_gateway.script(Answer(text="partial " * 200, chunk_size=8, chunk_delay=0.01, reasoning="so"))
    rt = await build_runtime(settings, migrate=False)
    surface = RecordingSurface()
    task = asyncio.create_task(rt.service.handle(msg("long"), surface))

    async def forty_characters_saved() -> bool:  # what the repair below starts from
        saved = await rows(rt.service, Part, Part.message_id.in_(select(Message.id).where(Message.role == "assistant")))
        return any(len(part.text or "") >= 40 for (part,) in saved)

    await eventually(forty_characters_saved)
    task.cancel()  # the process dies: nothing gets finalised
    await asyncio.gather(task, return_exceptions=True)
    await rt.close()
    cut = surface.texts[0]
    rt = await build_runtime(settings, migrate=False)
    try:
        assert [r.pages for r in rt.service.interrupted] == [["1"]]
        rt.service.attach("console", OneChat(surface))  # the platform is back: the core repairs the chat
        await rt.service.drain()
        assert surface.order == ["1"]  # rewritten in place, not posted again
        repaired = surface.messages["1"]
        assert repaired.final and repaired.text.startswith(cut.strip()[:40])
        assert repaired.text.endswith("_(answer interrupted: the bot restarted mid-answer)_")
        assert surface.writes[-1].controls  # Regenerate and feedback: the user can ask again
        turn = (await rows(rt.service, Turn))[0][0]
        assert turn.status == "interrupted"
        question = (await rows(rt.service, Message, Message.role == "user"))[0][0]
        assert question.status == "answered"  # not asked again by the next message
    finally:
        await rt.close()


async def test_group_messages_carry_the_senders_name(service, fake_gateway) -> None:
    key = ConversationKey("telegram", "bot", "-100", "")
    await service.handle(msg("we sell tea", key=key, author="bob", group=True, addressed=False), RecordingSurface())
    await service.handle(msg("write a slogan", key=key, author="carol", group=True), RecordingSurface())
    assert user_texts(fake_gateway.requests[-1].body) == ["[Bob] we sell tea\n\n[Carol] write a slogan"]


async def test_corrupt_image_gets_a_clear_answer_and_the_text_is_answered(service, fake_gateway) -> None:
    surface = RecordingSurface()
    await service.handle(msg("what is this?", attachments=[Attachment(b"not an image", "image/png", "x.png")]), surface)
    assert "couldn't use" in surface.texts[0] and "x.png" in surface.texts[0]
    assert len(fake_gateway.requests) == 1


async def test_regenerate_replaces_the_answer_in_history_and_feedback_is_stored(service, fake_gateway) -> None:
    fake_gateway.script(
        Answer(text="first try", reasoning="a"),
        Answer(text="second try", reasoning="b"),
        Answer(text="next", reasoning="c"),
    )
    surface = RecordingSurface()
    await service.handle(msg("slogan please"), surface)
    turn_id = surface.writes[-1].turn_id
    assert (await service.act(press(ControlKind.REGENERATE, turn_id), surface)).text == "Writing a new answer…"
    await service.drain()
    assert surface.texts == ["first try", "second try"]
    assert user_texts(fake_gateway.requests[1].body) == ["slogan please"]
    assert "first try" not in str(fake_gateway.requests[1].body["messages"])
    second_turn = surface.writes[-1].turn_id
    await service.act(press(ControlKind.FEEDBACK, second_turn, "1"), surface)
    await service.handle(msg("thanks"), surface)
    history = fake_gateway.requests[2].body["messages"]
    assert [m["content"] for m in history if m["role"] == "assistant"] == ["second try"]
    turns = {t.id: t for (t,) in await rows(service, Turn)}
    assert turns[second_turn].feedback == 1 and turns[second_turn].feedback_by == "alice"


async def test_a_failing_checkpoint_never_blocks_the_chat_or_loses_the_answer(service, fake_gateway) -> None:
    # Fault injection: the database refuses the answer's first save (a pool timeout, a
    # dropped connection). The user must still see the whole answer, once, and the history
    # must end up with it.
    store = service.store
    real_open = store.open_answer
    failures = []

    async def flaky_open(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise ConnectionError("database went away")
        return await real_open(*args, **kwargs)

    store.open_answer = flaky_open
    fake_gateway.script(Answer(text="complete answer " * 30, chunk_size=9, chunk_delay=0.002, reasoning="r"))
    surface = RecordingSurface()
    await service.handle(msg("go"), surface)
    assert failures and surface.texts == [("complete answer " * 30).strip()]
    answers = [m for (m,) in await rows(service, Message, Message.role == "assistant")]
    assert len(answers) == 1 and answers[0].status == "complete"
    text = [p for (p,) in await rows(service, Part, Part.message_id == answers[0].id, Part.kind == "text")]
    assert text[0].text == ("complete answer " * 30).strip()


@pytest.mark.skipif(not PG_URL, reason="postgres only: processes prove they are alive with advisory locks")
async def test_a_starting_process_leaves_live_answers_alone_and_repairs_dead_ones(settings, fake_gateway) -> None:
    release = asyncio.Event()
    fake_gateway.script(
        Answer(text="a live answer from process A", reasoning="r", chunk_size=4, wait_for=release, pause_after=9),
        Answer(text="this one dies with process C", reasoning="r", chunk_size=4, chunk_delay=0.02),
    )
    a = await build_runtime(settings, migrate=False)
    surface_a = RecordingSurface()
    task_a = asyncio.create_task(a.service.handle(msg("question for A"), surface_a))
    await eventually(lambda: surface_a.order)
    b = await build_runtime(settings, migrate=False)  # e.g. a rolling restart starts B
    try:
        assert b.service.interrupted == []
        release.set()
        await task_a
        assert surface_a.texts == ["a live answer from process A"]
        c = await build_runtime(settings, migrate=False)
        surface_c = RecordingSurface()
        key_c = ConversationKey("console", "local", "c")
        task_c = asyncio.create_task(c.service.handle(msg("question for C", key=key_c), surface_c))
        await eventually(lambda: surface_c.order)
        task_c.cancel()  # process C dies mid-answer: its connections (and lock) go with it
        await asyncio.gather(task_c, return_exceptions=True)
        await c.close()
        d = await build_runtime(settings, migrate=False)
        try:
            assert [r.key.chat for r in d.service.interrupted] == ["c"]
            statuses = sorted(t.status for (t,) in await rows(d.service, Turn))
            assert statuses == ["complete", "interrupted"]
        finally:
            await d.close()
    finally:
        await b.close()
        await a.close()


def png_bytes() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buf, "PNG")
    return buf.getvalue()


async def test_with_vision_off_the_user_is_told_and_no_image_is_sent(make_settings, fake_gateway) -> None:
    rt = await build_runtime(make_settings(BOT_VISION=False), migrate=False)
    try:
        surface = RecordingSurface()
        photo = Attachment(png_bytes(), "image/png", "p.png")
        await rt.service.handle(msg("what is in this photo?", attachments=[photo]), surface)
        assert "image input is turned off" in surface.texts[0]
        body = fake_gateway.requests[-1].body
        assert "image_url" not in str(body["messages"])
        assert "image input is turned off" in str(body["messages"][-1]["content"])  # the model knows too
    finally:
        await rt.close()


async def test_an_answer_cut_by_the_length_limit_says_so(service, fake_gateway) -> None:
    fake_gateway.script(Answer(text="The first half of a long story", reasoning="r", finish_reason="length"))
    surface = RecordingSurface()
    await service.handle(msg("tell a long story"), surface)
    assert surface.texts[-1].startswith("The first half of a long story")
    assert "length limit" in surface.texts[-1]
    turn = (await rows(service, Turn))[0][0]
    assert turn.finish_reason == "length" and turn.status == "complete"


async def test_every_page_of_an_interrupted_answer_is_repaired_after_a_restart(settings, fake_gateway) -> None:
    fake_gateway.script(
        Answer(text=" ".join(f"w{i:03d}" for i in range(400)), chunk_size=6, chunk_delay=0.005, reasoning="so")
    )
    rt = await build_runtime(settings, migrate=False)
    surface = RecordingSurface(max_chars=120)  # a long answer spreads over many messages
    task = asyncio.create_task(rt.service.handle(msg("long"), surface))
    await eventually(lambda: len(surface.order) >= 4)
    task.cancel()  # the process dies with four or more pages written
    await asyncio.gather(task, return_exceptions=True)
    await rt.close()
    before = list(surface.order)
    writes_before = len(surface.writes)
    rt = await build_runtime(settings, migrate=False)
    try:
        [recovered] = rt.service.interrupted
        assert recovered.pages[: len(before) - 1] == before[:-1]  # every page the answer had written
        rt.service.attach("console", OneChat(surface))
        await rt.service.drain()
        repaired = surface.writes[writes_before:]
        assert all(w.final for w in repaired)
        assert set(surface.order[: len(recovered.pages)]) == set(recovered.pages)
        for page in recovered.pages:  # each one rewritten in its final form
            assert surface.messages[page].final
        shown = " ".join(surface.messages[i].text for i in surface.order)
        assert shown.split() == recovered.text.split(), "the pages hold the saved answer, whole and in order"
        assert shown.endswith("_(answer interrupted: the bot restarted mid-answer)_")
        assert repaired[-1].controls and not any(w.controls for w in repaired[:-1])
        assert not surface.violations
    finally:
        await rt.close()


async def test_a_gateway_that_never_answers_is_said_early_and_ends_in_bounded_time(make_settings, fake_gateway) -> None:
    rt = await build_runtime(
        make_settings(BOT_ANSWER_START_TIMEOUT=1.0, BOT_SLOW_START_STATUS=0.2, BOT_READ_TIMEOUT=30), migrate=False
    )
    try:
        fake_gateway.script(Answer(hang=True), Answer(hang=True), Answer(hang=True))
        surface = RecordingSurface()
        await asyncio.wait_for(rt.service.handle(msg("hello?"), surface), timeout=10)
        assert "waiting for the model…" in surface.statuses  # told while it waited
        assert surface.statuses[-1] == ""
        assert "did not start answering in time" in surface.texts[-1]
        turn = (await rows(rt.service, Turn))[0][0]
        assert turn.status == "error"
    finally:
        await rt.close()


def test_streamed_pieces_are_kept_joined_not_one_by_one() -> None:
    """An answer's pieces (a token each) are joined as they stream: the text is kept whole,
    at about its own size, not as thousands of tiny strings (issue 20, peak RSS)."""
    from bot.core.chat import KEEP_JOINED, _keep

    parts: list[str] = []
    for i in range(1000):
        _keep(parts, f"{i},")
    assert "".join(parts) == "".join(f"{i}," for i in range(1000))
    assert len(parts) < KEEP_JOINED
