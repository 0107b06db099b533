"""What a Slack user of this year's agents sees (issue 20, item 2), end to end: the real
slack-bolt app and slack-sdk against the fake Slack Web API, the real core, the fake gateway.

A plan for tools called together, thread titles, an answer that outlives its native stream,
suggested prompts only where Slack takes them, and notices shown to their one person.
"""

from __future__ import annotations

import asyncio
import json
import time

from adapters.slack import controls
from bot.tools import Tool
from tests.fakes.gateway import Answer, FakeToolCall
from tests.fakes.slack_api import BOT_USER_ID, FakeMessage, FakeSlack
from tests.polling import eventually
from tests.slack_harness import CHANNEL, DM, THOUGHT, Harness, _close, _harness

PROMPTS = "assistant.threads.setSuggestedPrompts"
TITLE = "assistant.threads.setTitle"


def _streamed(fake: FakeSlack, channel: str, thread: str) -> FakeMessage | None:
    return next((m for m in fake.bot_replies(channel, thread) if m.chunks or m.streaming), None)


# --- 1. tools called together: a plan, ticked off ---------------------------------------------


async def test_tools_called_together_are_drawn_as_a_plan_and_ticked_off(slack: Harness):
    fake, gw = slack.fake, slack.gateway
    release = asyncio.Event()
    thread = ""

    async def lookup(topic: str = "") -> str:
        await release.wait()  # the plan must be on screen while the tools run
        return f"{topic}: 3 results"

    slack.service.tools.add(
        Tool("lookup", "Looks a topic up.", {"type": "object", "properties": {"topic": {"type": "string"}}}, lookup)
    )
    gw.script(
        Answer(
            text="",
            reasoning="two lookups",
            tool_calls=[
                FakeToolCall("lookup", {"topic": "tea"}, id="t1"),
                FakeToolCall("lookup", {"topic": "coffee"}, id="t2"),
            ],
        ),
        Answer(text="Tea and coffee both have 3 results.", reasoning=THOUGHT),
    )
    thread, env = fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> compare tea and coffee", mention=True)
    await slack.send(env)

    def running_plan() -> FakeMessage | None:
        msg = _streamed(fake, CHANNEL, thread)
        tasks = msg.tasks() if msg else {}
        both = {k: v["status"] for k, v in tasks.items()} == {"t1": "in_progress", "t2": "in_progress"}
        return msg if both else None

    shown = await eventually(running_plan, timeout=10, what="the plan with both steps running")
    assert shown.task_display_mode == "plan"
    assert shown.plan_title == "Working through 2 steps (0 done)"
    release.set()
    await slack.settle()
    [answer] = fake.bot_replies(CHANNEL, thread)
    assert answer.ts == shown.ts and not answer.streaming  # the plan heads the answer's own message
    assert {k: v["status"] for k, v in answer.tasks().items()} == {"t1": "complete", "t2": "complete"}
    assert answer.plan_title == "2 steps done"
    assert answer.text == "Tea and coffee both have 3 results."
    assert controls.REGENERATE in answer.button_ids


# --- 2. assistant thread titles --------------------------------------------------------------


async def test_a_new_assistant_thread_is_titled_once_from_its_first_message(slack: Harness):
    fake = slack.fake
    thread_ts, started = fake.assistant_thread_started(DM)
    await slack.send(started)
    first = (
        "<@U0BOT0001> *Write* a launch post for <https://example.com/app|our new app> that works "
        "on LinkedIn and X\nmore details: it ships on Monday"
    )
    for text in (first, "make it shorter", "now in Chinese"):
        _, env = fake.user_message(DM, text, thread_ts=thread_ts)
        await slack.send(env)
        await slack.settle()
    [titled] = fake.calls_to(TITLE)
    title = fake.titles[(DM, thread_ts)]
    assert titled.ok and titled.args["thread_ts"] == thread_ts
    assert title == "Write a launch post for our new app…"  # the first line, markup gone, cut at a word
    # A channel thread is no assistant thread: never titled.
    _, env = fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> hello there", mention=True)
    await slack.send(env)
    await slack.settle()
    assert len(fake.calls_to(TITLE)) == 1


# --- 3. an answer that outlives its stream ----------------------------------------------------


async def _slow_stream_harness(make_settings, fake_gateway) -> tuple[Harness, FakeSlack]:
    # Slack's windows at 1/200: a stream lives 300 s x 0.005 = 1.5 s. The bot would stop its
    # stream after SLACK_STREAM_MAX_AGE (also scaled): set past it, so Slack expires it first.
    window = 0.3
    fake = await FakeSlack(window=window, post_interval=window / 60).start()
    assert fake.stream_ttl == 1.5
    return await _harness(make_settings, fake_gateway, fake, SLACK_STREAM_MAX_AGE=600), fake


async def _outlive(
    h: Harness, fake: FakeSlack, answer: str, pause_after: int, chunk_delay: float = 0.0
) -> tuple[str, FakeMessage]:
    """Ask; let the answer start streaming, stall until Slack expired its stream, then finish."""
    release = asyncio.Event()
    h.gateway.script(
        Answer(
            text=answer,
            reasoning=THOUGHT,
            chunk_size=40,
            chunk_delay=chunk_delay,
            pause_after=pause_after,
            wait_for=release,
        )
    )
    ts, env = fake.user_message(DM, "write it slowly")
    await h.send(env)
    stream = await eventually(
        lambda: next((m for m in fake.bot_replies(DM, ts) if m.streaming and m.text), None),
        timeout=10,
        what="a stream with text",
    )
    await eventually(
        lambda: time.monotonic() - stream.stream_started > fake.stream_ttl,
        timeout=10,
        what="the stream's lifetime to pass",
    )
    release.set()
    await h.settle()
    return ts, stream


async def test_an_answer_that_outlives_its_stream_is_finished_in_the_same_message(make_settings, fake_gateway):
    h, fake = await _slow_stream_harness(make_settings, fake_gateway)
    try:
        answer = "The first part arrives quickly. " * 8 + "Then, after a long wait, the rest of it. " * 8
        ts, stream = await _outlive(h, fake, answer.strip(), pause_after=6, chunk_delay=0.02)
        assert any(c.error == "message_not_in_streaming_state" for c in fake.calls)
        [reply] = fake.bot_replies(DM, ts)  # not a second message
        assert reply.ts == stream.ts and not reply.streaming
        assert reply.text == answer.strip()
        assert controls.REGENERATE in reply.button_ids  # the finished answer's buttons
        updates = [c for c in fake.calls if c.method == "chat.update" and c.ok and c.args.get("ts") == stream.ts]
        # While the rest was written the message carried Stop, as any answer written with chat.update.
        assert any(controls.STOP in json.dumps(c.args.get("blocks")) for c in updates[:-1])
        assert not fake.calls_to("chat.postMessage")
    finally:
        await _close(h)
        await fake.close()


async def test_an_expired_stream_longer_than_one_message_continues_in_new_ones(make_settings, fake_gateway):
    h, fake = await _slow_stream_harness(make_settings, fake_gateway)
    try:
        paragraph = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. " * 5
        answer = "\n\n".join([paragraph] * 60).strip()  # about 24,000 characters: three messages
        ts, stream = await _outlive(h, fake, answer, pause_after=4)
        replies = fake.bot_replies(DM, ts)
        assert replies[0].ts == stream.ts  # the stream's own message is the first page
        assert len(replies) >= 2 and all(len(r.text) <= 12_000 and not r.streaming for r in replies)
        assert "".join("".join(r.text for r in replies).split()) == "".join(answer.split())
        assert controls.REGENERATE in replies[-1].button_ids
        assert controls.REGENERATE not in replies[0].button_ids
    finally:
        await _close(h)
        await fake.close()


# --- 4. suggested prompts only where Slack takes them ------------------------------------------


async def test_suggested_prompts_only_in_the_assistant_view_and_never_again_where_refused(slack: Harness):
    fake = slack.fake
    thread_ts, started = fake.assistant_thread_started(DM)
    await slack.send(started)
    await slack.settle()
    assert 1 <= len(fake.suggested_prompts[(DM, thread_ts)]) <= 4
    # An assistant thread Slack no longer knows refuses them (invalid_thread_ts); the same
    # event again (a retry with a new id, a reopened pane) does not ask again.
    gone, started = fake.assistant_thread_started(DM)
    again = fake.envelope(started["event"])
    fake.assistant_threads.discard((DM, gone))
    await slack.send(started)
    await slack.settle()
    await slack.send(again)
    await slack.settle()
    refused = [c for c in fake.calls_to(PROMPTS) if c.args.get("thread_ts") == gone]
    assert [c.error for c in refused] == ["invalid_thread_ts"]
    # Channels have no assistant view: a channel's id is never asked for prompts.
    await slack.send(
        fake.envelope(
            {
                "type": "app_home_opened",
                "user": "U0ALICE01",
                "channel": CHANNEL,
                "tab": "messages",
                "event_ts": fake.new_ts(),
            }
        )
    )
    await slack.settle()
    assert not [c for c in fake.calls_to(PROMPTS) if c.args.get("channel_id") == CHANNEL]


async def test_a_workspace_without_the_assistant_scope_is_asked_once(slack: Harness):
    fake = slack.fake
    fake.missing_scopes.add(PROMPTS)
    for dm in (DM, "D0BOB00001", "D0CAROL001"):
        await slack.send(
            fake.envelope(
                {
                    "type": "app_home_opened",
                    "user": "U0ALICE01",
                    "channel": dm,
                    "tab": "messages",
                    "event_ts": fake.new_ts(),
                }
            )
        )
        await slack.settle()
    assert [c.error for c in fake.calls_to(PROMPTS)] == ["missing_scope"]


# --- 5. notices meant for one person -------------------------------------------------------------


async def test_personal_notices_in_a_channel_thread_are_shown_to_the_asker_alone(slack: Harness):
    fake, gw = slack.fake, slack.gateway
    gw.script(Answer(text="Here is a tagline.", reasoning=THOUGHT))
    thread, env = fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> a tagline for tea", mention=True)
    await slack.send(env)
    await slack.settle()
    for text in ("/help", "/stlye xiaohongshu"):
        _, env = fake.user_message(
            CHANNEL, f"<@{BOT_USER_ID}> {text}", user="U0BOB0001", thread_ts=thread, mention=True
        )
        await slack.send(env)
        await slack.settle()
    # Everyone sees the answer; only Bob sees the help and the unknown-command notice, in the thread.
    assert [m.text for m in fake.bot_replies(CHANNEL, thread)] == ["Here is a tagline."]
    help_text, unknown = fake.ephemerals_for("U0BOB0001", CHANNEL)
    assert help_text.thread_ts == unknown.thread_ts == thread
    assert "/help" in help_text.text and "stlye" in unknown.text
    assert not fake.ephemerals_for("U0ALICE01")
    assert gw.served == 1  # neither reached the model


async def test_a_notice_slack_cannot_show_privately_is_posted_instead(slack: Harness):
    fake = slack.fake
    fake.members[CHANNEL] = {"U0BOB0001"}  # Alice is not a member (a guest, a shared channel)
    thread, env = fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> /help", mention=True)
    await slack.send(env)
    await slack.settle()
    assert [c.error for c in fake.calls_to("chat.postEphemeral")] == ["user_not_in_channel"]
    [posted] = fake.bot_replies(CHANNEL, thread)
    assert "/help" in posted.text and not fake.ephemerals


async def test_in_a_dm_a_personal_notice_is_an_ordinary_message(slack: Harness):
    fake = slack.fake
    ts, env = fake.user_message(DM, "/help")
    await slack.send(env)
    await slack.settle()
    [posted] = fake.bot_replies(DM, ts)
    assert "/help" in posted.text
    assert not fake.calls_to("chat.postEphemeral")
