"""The Slack adapter end to end: real slack-bolt / slack-sdk against the fake Slack API,
the real ChatService and store, and the fake gateway.

Rate windows are shrunk (``PLATFORM_TIME_SCALE`` and the fake's ``window``) except in the
first test, which keeps Slack's real tier values.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest
from sqlalchemy import select

from adapters.slack import controls, render
from bot.core import texts
from bot.platform.controls import Press, answer_controls
from bot.store.models import InboundEvent, Message, Part, Turn
from tests.fakes.gateway import Answer, last_user_text
from tests.fakes.slack_api import (
    APP_TOKEN,
    BOT_TOKEN,
    BOT_USER_ID,
    SIGNING_SECRET,
    TEAM_ID,
    FakeMessage,
    FakeSlack,
)
from tests.platforms import platform_settings
from tests.polling import eventually
from tests.slack_harness import CHANNEL, DM, PNG, THOUGHT, Harness, _close, _harness


def _fences_balanced(text: str) -> bool:
    return sum(1 for line in text.splitlines() if line.strip().startswith("```")) % 2 == 0


# --- channels --------------------------------------------------------------------------


async def test_mention_in_channel_answers_in_a_thread_with_real_tier_values(make_settings, fake_gateway):
    fake = await FakeSlack().start()  # Slack's real tiers: 60 s windows, 1 post/s per channel
    h = await _harness(make_settings, fake_gateway, fake, PLATFORM_TIME_SCALE=1.0)
    try:
        ts, mention = fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> hello there", mention=True)
        # Slack also sends the plain message event for the same message: answered once.
        message = fake.envelope({**mention["event"], "type": "message", "channel_type": "channel"})
        started = time.monotonic()
        assert (await h.send(mention)).status_code == 200
        assert (await h.send(message)).status_code == 200
        assert time.monotonic() - started < 3  # acked well inside Slack's 3 s
        await h.settle()
        replies = fake.bot_replies(CHANNEL, ts)
        assert len(replies) == 1
        assert replies[0].thread_ts == ts
        assert "echo: [Alice] hello there" in replies[0].text
        assert "<@" not in replies[0].text  # the bot's mention was stripped before the model
        assert controls.REGENERATE in replies[0].button_ids
        start = fake.calls_to("chat.startStream")[0].args
        assert start["recipient_user_id"] == "U0ALICE01" and start["recipient_team_id"] == TEAM_ID
        assert not fake.rate_limited
        assert not fake.calls_to("users.info") or all(c.at > started for c in fake.calls_to("users.info"))
    finally:
        await _close(h)
        await fake.close()


async def test_follow_up_in_a_joined_thread_and_shared_context(slack: Harness):
    fake, gw = slack.fake, slack.gateway
    ts, mention = fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> let's plan the launch", mention=True)
    await slack.send(mention)
    await slack.settle()
    # A follow-up without a mention in the joined thread is answered.
    _, follow = fake.user_message(CHANNEL, "what about the date?", user="U0BOB0001", thread_ts=ts)
    await slack.send(follow)
    await slack.settle()
    assert "echo: [Bob] what about the date?" in slack.reply_text(CHANNEL, ts)
    # Talk between people (mentioning someone else) is kept as context, not answered.
    before = len(fake.bot_replies(CHANNEL, ts))
    _, aside = fake.user_message(
        CHANNEL, "<@U0ALICE01> can you check the budget first?", user="U0CAROL01", thread_ts=ts
    )
    await slack.send(aside)
    await slack.settle()
    assert len(fake.bot_replies(CHANNEL, ts)) == before
    _, again = fake.user_message(CHANNEL, "ok, go on", user="U0ALICE01", thread_ts=ts)
    await slack.send(again)
    await slack.settle()
    prompt = json.dumps(gw.last.json, ensure_ascii=False)
    assert "[Carol] <@U0ALICE01> can you check the budget first?" in prompt
    # Threads the bot never joined and top-level chatter are not answered.
    other_ts, other = fake.user_message(CHANNEL, "unrelated chat")
    await slack.send(other)
    _, reply_elsewhere = fake.user_message(CHANNEL, "a reply elsewhere", thread_ts=other_ts)
    await slack.send(reply_elsewhere)
    await slack.settle()
    assert fake.bot_replies(CHANNEL, other_ts) == []


async def test_mention_inside_an_existing_thread_reads_its_earlier_messages(slack: Harness):
    fake, gw = slack.fake, slack.gateway
    root, _ = fake.user_message(CHANNEL, "Our slogan draft: 'Coffee that waits for you'", user="U0BOB0001")
    fake.user_message(CHANNEL, "I prefer something warmer", user="U0CAROL01", thread_ts=root)
    _, mention = fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> improve it", thread_ts=root, mention=True)
    await slack.send(mention)
    await slack.settle()
    prompt = json.dumps(gw.last.json, ensure_ascii=False)
    assert "Coffee that waits for you" in prompt and "[Carol] I prefer something warmer" in prompt
    assert slack.reply_text(CHANNEL, root).rstrip().endswith("[Alice] improve it")


async def test_ignored_events_get_no_answer(slack: Harness):
    fake = slack.fake
    ts, mention = fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> hi", mention=True)
    await slack.send(mention)
    await slack.settle()
    requests = len(slack.gateway.requests)
    for subtype in ("message_changed", "message_deleted", "bot_message", "channel_join"):
        _, env = fake.user_message(CHANNEL, "edited", thread_ts=ts, subtype=subtype)
        await slack.send(env)
    _, own = fake.user_message(CHANNEL, "my own words", user=BOT_USER_ID, thread_ts=ts)
    await slack.send(own)
    _, other_bot = fake.user_message(CHANNEL, "another bot", thread_ts=ts)
    other_bot["event"]["bot_id"] = "B0OTHER01"
    await slack.send(other_bot)
    await slack.settle()
    assert len(slack.gateway.requests) == requests
    assert len(fake.bot_replies(CHANNEL, ts)) == 1


# --- DMs and the assistant view -------------------------------------------------------------


async def test_direct_messages_each_thread_is_a_conversation(slack: Harness):
    fake, gw = slack.fake, slack.gateway
    first, env = fake.user_message(DM, "remember the word mango")
    await slack.send(env)
    await slack.settle()
    assert "echo: remember the word mango" in slack.reply_text(DM, first)
    assert "recipient_user_id" not in fake.calls_to("chat.startStream")[-1].args
    _, reply = fake.user_message(DM, "which word?", thread_ts=first)
    await slack.send(reply)
    await slack.settle()
    assert "mango" in json.dumps(gw.last.json)  # same thread: same conversation
    second, fresh = fake.user_message(DM, "a new topic")
    await slack.send(fresh)
    await slack.settle()
    assert "mango" not in json.dumps(gw.last.json)  # a new top-level DM: a new conversation
    assert "echo: a new topic" in slack.reply_text(DM, second)


async def test_assistant_view_prompts_title_and_status_always_cleared(slack: Harness):
    fake, gw = slack.fake, slack.gateway
    fake.status_clears_on_reply = False  # prove the adapter clears it itself
    thread_ts = fake.new_ts()
    started = fake.envelope(
        {
            "type": "assistant_thread_started",
            "event_ts": thread_ts,
            "assistant_thread": {
                "user_id": "U0ALICE01",
                "channel_id": DM,
                "thread_ts": thread_ts,
                "context": {"channel_id": CHANNEL, "team_id": TEAM_ID},
            },
        }
    )
    assert (await slack.send(started)).status_code == 200
    await slack.settle()
    prompts = fake.suggested_prompts[(DM, thread_ts)]
    assert any("小红书" in p["title"] for p in prompts)  # a copywriting starter
    assert 1 <= len(prompts) <= 4
    gw.script(Answer(text="Here are three taglines.", reasoning="Think about coffee."))
    _, env = fake.user_message(DM, "Write taglines for a coffee brand", thread_ts=thread_ts)
    await slack.send(env)
    await slack.settle()
    assert fake.titles[(DM, thread_ts)] == "Write taglines for a coffee brand"
    assert "thinking…" in [s for _, _, s in fake.status_history]
    assert fake.status[(DM, thread_ts)] == ""
    # After a gateway error the user gets a clear notice and the status is cleared too.
    gw.script(Answer(status=401, error_body={"error": {"message": "bad key"}}))
    _, env = fake.user_message(DM, "again please", thread_ts=thread_ts)
    await slack.send(env)
    await slack.settle()
    assert fake.status[(DM, thread_ts)] == ""
    last = fake.bot_replies(DM, thread_ts)[-1]
    assert "key" in last.text.lower() and controls.REGENERATE not in last.button_ids


async def test_agent_view_messages_tab_gets_suggested_prompts_once(slack: Harness):
    fake = slack.fake
    for _ in range(2):
        await slack.send(
            fake.envelope(
                {
                    "type": "app_home_opened",
                    "user": "U0ALICE01",
                    "channel": DM,
                    "tab": "messages",
                    "event_ts": fake.new_ts(),
                }
            )
        )
    await slack.settle()
    assert len(fake.calls_to("assistant.threads.setSuggestedPrompts")) == 1
    assert (DM, None) in fake.suggested_prompts


# --- files ------------------------------------------------------------------------------------


async def test_image_is_downloaded_with_the_bot_token_and_sent_to_the_model(slack: Harness):
    fake, gw = slack.fake, slack.gateway
    image = fake.add_file("photo.png", "image/png", PNG)
    stub = fake.add_file("connect.png", "image/png", PNG, connect_stub=True)
    ts, env = fake.user_message(DM, "what is in these pictures?", files=[image, stub])
    await slack.send(env)
    await slack.settle()
    content = [m for m in gw.last.json["messages"] if m["role"] == "user"][-1]["content"]
    assert sum(1 for block in content if block.get("type") == "image_url") == 2
    assert fake.calls_to("files.info")  # the Slack Connect stub was resolved
    assert "echo:" in slack.reply_text(DM, ts)


async def test_bad_files_get_a_clear_reply(slack: Harness):
    fake, gw = slack.fake, slack.gateway
    fake.download_token = "xoxb-someone-else"  # as if the app lacked files:read: HTML login page
    login = fake.add_file("photo.png", "image/png", PNG)
    archive = fake.add_file("stuff.zip", "application/zip", b"PK\x03\x04")
    huge = fake.add_file("huge.png", "image/png", PNG, size=11 * 1024 * 1024)
    ts, env = fake.user_message(DM, "look", files=[login, archive, huge])
    await slack.send(env)
    await slack.settle()
    shown = slack.reply_text(DM, ts)
    assert "files:read" in shown
    assert "stuff.zip" in shown and "application/zip" in shown
    assert "huge.png" in shown and "10 MB" in shown
    user_turn = [m for m in gw.last.json["messages"] if m["role"] == "user"][-1]
    assert "image_url" not in json.dumps(user_turn)  # the HTML page never reached the model


# --- delivery -----------------------------------------------------------------------------------


async def test_a_retried_event_is_answered_once_also_by_another_process(slack: Harness, make_settings):
    fake = slack.fake
    ts, env = fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> only once please", mention=True)
    assert (await slack.send(env)).status_code == 200
    assert (await slack.send(env, retry_num=1)).status_code == 200
    await slack.settle()
    # A second process on the same database receives Slack's next retry.
    other = await _harness(make_settings, slack.gateway, fake)
    try:
        assert (await other.send(env, retry_num=2)).status_code == 200
        await other.settle()
    finally:
        await _close(other)
    assert len(slack.gateway.requests) == 1
    assert len(fake.bot_replies(CHANNEL, ts)) == 1


async def test_forged_or_stale_signatures_are_refused_and_nothing_is_stored(slack: Harness):
    fake = slack.fake
    _, env = fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> forged", mention=True)
    calls = len(fake.calls)
    forged = await slack.send(env, secret="not-the-secret")
    stale = await slack.send(env, timestamp=int(time.time()) - 600)
    assert forged.status_code == 401 and stale.status_code == 401
    await slack.settle()
    assert len(fake.calls) == calls
    async with slack.runtime.db.read() as conn:
        assert (await conn.execute(select(InboundEvent))).first() is None
    assert slack.gateway.requests == []


async def test_url_verification_is_answered_when_signed(slack: Harness):
    response = await slack.send({"type": "url_verification", "challenge": "c-123", "token": "t"})
    assert response.status_code == 200 and "c-123" in response.text


async def test_socket_mode_against_the_fake_websocket(make_settings, fake_gateway, fake_slack):
    h = await _harness(make_settings, fake_gateway, fake_slack, SLACK_APP_TOKEN=APP_TOKEN)
    try:
        assert h.adapter.routes() == []
        ts, env = fake_slack.user_message(CHANNEL, f"<@{BOT_USER_ID}> over the socket", mention=True)
        await fake_slack.push(env)  # returns once the app acked the envelope
        await fake_slack.push(env, retry_attempt=1)  # Slack's retry of the same event
        await h.settle()  # both were handed in before their acks
        assert "echo: [Alice] over the socket" in h.reply_text(CHANNEL, ts)
        assert len(fake_gateway.requests) == 1
        assert fake_slack.calls_to("apps.connections.open")
    finally:
        await _close(h)


# --- load, length, expiry -------------------------------------------------------------------------


async def test_fifty_concurrent_answers_in_one_workspace_draw_no_429(make_settings, fake_gateway):
    # Limits at a fifth of Slack's real time scale: shrunk further, the milliseconds of
    # scheduling jitter on a loaded machine become a large share of a post's spacing.
    window = 12.0
    fake = await FakeSlack(window=window, post_interval=window / 60).start()
    slack = await _harness(make_settings, fake_gateway, fake)
    try:
        envs = [fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> question number {i}", mention=True) for i in range(50)]
        responses = await asyncio.gather(*(slack.send(env) for _, env in envs))
        assert all(r.status_code == 200 for r in responses)
        await slack.settle(timeout=180)
        assert fake.rate_limited == []
        for i, (ts, _) in enumerate(envs):
            replies = fake.bot_replies(CHANNEL, ts)
            assert len(replies) == 1, i
            assert replies[0].text.startswith("echo: [Alice] question number "), replies[0].text
            assert replies[0].text.rstrip().endswith(f"question number {i}")
            assert controls.REGENERATE in replies[0].button_ids
            assert not replies[0].streaming
    finally:
        await _close(slack)
        await fake.close()


@pytest.mark.parametrize("native", [True, False])
async def test_a_20000_character_answer_is_split_without_breaking_code(slack_with, native: bool):
    slack = await slack_with(SLACK_NATIVE_STREAMING=native)
    paragraph = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 6 + "\n\n"
    code = "```python\n" + "".join(f"print('line {i}')\n" for i in range(260)) + "```\n\n"
    answer = (paragraph * 12 + code + paragraph * 8 + code)[:20_000].rstrip() + "\n\nThe end."
    slack.gateway.script(Answer(text=answer, chunk_size=400, reasoning=THOUGHT))
    ts, env = slack.fake.user_message(DM, "write a lot")
    await slack.send(env)
    await slack.settle()
    replies = slack.fake.bot_replies(DM, ts)
    assert len(replies) >= 2
    assert all(len(r.text) <= 12_000 and _fences_balanced(r.text) for r in replies)
    joined = "".join(r.text for r in replies)
    assert "".join(joined.split()).replace("```python", "").replace("```", "") == "".join(answer.split()).replace(
        "```python", ""
    ).replace("```", "")
    assert controls.REGENERATE in replies[-1].button_ids and controls.REGENERATE not in replies[0].button_ids


async def test_an_expired_stream_is_finished_in_its_own_message(slack_with):
    slack = await slack_with(SLACK_STREAM_MAX_AGE=600)  # let Slack expire it: the adapter must cope
    fake = slack.fake
    fake.stream_ttl = 0.4
    answer = " ".join(f"word{i}" for i in range(120))
    slack.gateway.script(Answer(text=answer, chunk_size=12, chunk_delay=0.02, reasoning=THOUGHT))
    ts, env = fake.user_message(DM, "stream slowly")
    await slack.send(env)
    await slack.settle()
    assert any(c.error == "message_not_in_streaming_state" for c in fake.calls)
    # The stream's own message goes on with chat.update: one message, nothing lost or repeated.
    [reply] = fake.bot_replies(DM, ts)
    assert reply.text == answer and not reply.streaming
    assert controls.REGENERATE in reply.button_ids


async def test_an_old_stream_is_stopped_before_it_expires_and_goes_on_in_its_message(slack_with):
    slack = await slack_with(SLACK_STREAM_MAX_AGE=6)  # Slack seconds: 0.3 s at this time scale
    fake = slack.fake
    fake.stream_ttl = 1.0
    answer = " ".join(f"word{i}" for i in range(120))
    slack.gateway.script(Answer(text=answer, chunk_size=12, chunk_delay=0.02, reasoning=THOUGHT))
    ts, env = fake.user_message(DM, "stream slowly")
    await slack.send(env)
    await slack.settle()
    assert not any(c.error == "message_not_in_streaming_state" for c in fake.calls)
    [reply] = fake.bot_replies(DM, ts)
    assert reply.text == answer and not reply.streaming
    assert any(c.method == "chat.update" and c.args.get("ts") == reply.ts for c in fake.calls)


async def test_refused_native_streaming_falls_back_and_is_remembered(slack: Harness):
    fake = slack.fake
    fake.streaming_error = "feature_not_enabled"
    for text in ("first", "second"):
        ts, env = fake.user_message(DM, text)
        await slack.send(env)
        await slack.settle()
        assert f"echo: {text}" in slack.reply_text(DM, ts)
    assert len(fake.calls_to("chat.startStream")) == 1


async def test_a_429_pauses_the_budget_for_its_retry_after(slack_with):
    slack = await slack_with(SLACK_NATIVE_STREAMING=False)
    fake = slack.fake
    fake.tier_limits["chat.update"] = 1  # far below what the adapter assumes: 429s will come
    fake.window = 1.0
    # Answers are matched to questions by content (requests may race to the gateway).
    slack.gateway.default = lambda body: Answer(
        text=f"answer to {last_user_text(body).split()[-1]} " + "x" * 50,
        chunk_size=10,
        chunk_delay=0.01,
        reasoning=THOUGHT,
    )
    first_ts, first_env = fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> q0", mention=True)
    await slack.send(first_env)
    await eventually(lambda: [c for c in fake.rate_limited if c.method == "chat.update"], timeout=10, every=0.005)
    first = next(c for c in fake.rate_limited if c.method == "chat.update")
    # Answers that start after the 429 hold back too: the workspace's budget is paused.
    later = [fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> q{i}", mention=True) for i in (1, 2)]
    await asyncio.gather(*(slack.send(env) for _, env in later))
    await slack.settle(timeout=60)
    for ts, _ in later:
        [message] = fake.bot_replies(CHANNEL, ts)
        updates = [c for c in fake.calls_to("chat.update") if c.args.get("ts") == message.ts]
        assert updates and min(c.at for c in updates) >= first.at + 0.9  # Retry-After: 1 honoured
    for i, ts in enumerate([first_ts] + [ts for ts, _ in later]):
        assert slack.reply_text(CHANNEL, ts) == f"answer to q{i} " + "x" * 50  # every answer whole


# --- buttons and restart ---------------------------------------------------------------------------


async def test_regenerate_and_feedback_buttons(slack: Harness):
    fake = slack.fake
    slack.gateway.script("first version", "second version")
    ts, env = fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> a slogan", mention=True)
    await slack.send(env)
    await slack.settle()
    answer = fake.bot_replies(CHANNEL, ts)[0]
    assert (await slack.click(fake.block_action(answer, controls.FEEDBACK_UP))).status_code == 200
    await slack.settle()
    press = Press.decode(answer.button(controls.FEEDBACK_UP)["value"])
    assert press is not None
    turn_id = press.turn_id
    async with slack.runtime.db.read() as conn:
        row = (await conn.execute(select(Turn.feedback, Turn.feedback_by).where(Turn.id == turn_id))).one()
    assert tuple(row) == (1, "U0ALICE01")
    await slack.click(fake.block_action(answer, controls.REGENERATE))
    await slack.settle()
    replies = fake.bot_replies(CHANNEL, ts)
    assert [r.text for r in replies] == ["first version", "second version"]


async def test_stop_button_while_streaming(slack_with):
    slack = await slack_with(SLACK_NATIVE_STREAMING=False)  # the button lives on post-and-edit messages
    fake, gw = slack.fake, slack.gateway
    gate = gw.hold()
    gw.script(
        Answer(
            text="partial answer that goes on and on", chunk_size=8, pause_after=10, wait_for=gate, reasoning=THOUGHT
        )
    )
    ts, env = fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> go", mention=True)
    await slack.send(env)
    streaming = (await eventually(lambda: fake.bot_replies(CHANNEL, ts), timeout=10))[0]
    assert controls.STOP in streaming.button_ids
    await slack.click(fake.block_action(streaming, controls.STOP))
    await slack.settle()
    final = fake.bot_replies(CHANNEL, ts)[0]
    assert final.text.startswith("partial ") and texts.STOPPED in final.text
    assert controls.STOP not in final.button_ids
    gw.release()


async def test_removed_from_a_channel_mid_answer_the_answer_stops_and_nothing_more_is_sent(slack: Harness):
    fake, gw = slack.fake, slack.gateway
    gw.script(Answer(text="a long answer that keeps going " * 60, chunk_size=8, chunk_delay=0.02, reasoning=THOUGHT))
    ts, env = fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> write a lot", mention=True)
    await slack.send(env)
    await eventually(lambda: fake.bot_replies(CHANNEL, ts), timeout=10)
    assert (await slack.send(fake.remove_bot(CHANNEL))).status_code == 200
    await slack.settle()
    async with slack.runtime.db.read() as conn:
        turn = (await conn.execute(select(Turn.status, Turn.error))).one()
    assert turn.status == "interrupted" and "no longer takes" in turn.error
    refused = [c for c in fake.calls if c.error == "not_in_channel"]
    assert len(refused) <= 2, "no retries into a channel the bot was removed from"
    assert len(slack.gateway.requests) == 1


async def test_stop_shortcut_on_a_native_stream(slack: Harness):
    fake, gw = slack.fake, slack.gateway
    gate = gw.hold()
    gw.script(
        Answer(
            text="streaming natively and then some more", chunk_size=8, pause_after=10, wait_for=gate, reasoning=THOUGHT
        )
    )
    ts, env = fake.user_message(DM, "go")
    await slack.send(env)
    stream = (await eventually(lambda: fake.bot_replies(DM, ts), timeout=10))[0]
    assert stream.streaming
    await slack.click(fake.message_shortcut(stream, render.STOP_SHORTCUT))
    await slack.settle()
    final = fake.bot_replies(DM, ts)[0]
    assert not final.streaming and texts.STOPPED in final.text
    gw.release()


@pytest.mark.parametrize("native", [True, False], ids=["native-stream", "post-and-edit"])
async def test_restart_in_mid_answer_repairs_the_message(make_settings, fake_gateway, fake_slack, native: bool):
    h = await _harness(make_settings, fake_gateway, fake_slack, SLACK_NATIVE_STREAMING=native)
    gate = fake_gateway.hold()
    fake_gateway.script(
        Answer(
            text="the first half of a long answer, then more",
            chunk_size=8,
            pause_after=11,
            wait_for=gate,
            reasoning=THOUGHT,
        )
    )
    ts, env = fake_slack.user_message(CHANNEL, f"<@{BOT_USER_ID}> tell me", mention=True)
    await h.send(env)
    await eventually(lambda: fake_slack.bot_replies(CHANNEL, ts), timeout=10)

    async def partial_answer_saved() -> bool:  # what a restart repairs from
        async with h.runtime.db.read() as conn:
            saved = (
                (
                    await conn.execute(
                        select(Part.text)
                        .join(Message, Message.id == Part.message_id)
                        .where(Message.role == "assistant")
                    )
                )
                .scalars()
                .all()
            )
        return any((text or "").startswith("the first") for text in saved)

    await eventually(partial_answer_saved, timeout=10)
    # The process dies: its answers stop where they are, without a final write.
    await h.runtime.close()
    await h.http.aclose()
    await h.adapter.stop()
    fake_gateway.release()
    partial = fake_slack.bot_replies(CHANNEL, ts)[0]
    assert texts.RESTART_MARKER not in partial.text
    assert partial.streaming is native  # a native stream stays open on Slack's side
    again = await _harness(make_settings, fake_gateway, fake_slack, SLACK_NATIVE_STREAMING=native)
    try:
        await again.settle()
        repaired = fake_slack.bot_replies(CHANNEL, ts)
        assert len(repaired) == 1 and repaired[0].ts == partial.ts
        assert repaired[0].text.startswith("the first") and texts.RESTART_MARKER in repaired[0].text
        assert not repaired[0].streaming
        assert controls.STOP not in repaired[0].button_ids
        assert controls.REGENERATE in repaired[0].button_ids  # the user can ask again
        # A post-and-edit message needs one chat.update; only an open stream is stopped first.
        assert bool(fake_slack.calls_to("chat.stopStream")) is native
        fake_gateway.script("the whole answer this time")
        await again.click(fake_slack.block_action(repaired[0], controls.REGENERATE))
        await again.settle()
        assert fake_slack.bot_replies(CHANNEL, ts)[-1].text == "the whole answer this time"
    finally:
        await _close(again)


async def test_secrets_never_reach_the_logs(make_settings, fake_gateway, fake_slack, caplog, capsys):
    caplog.set_level(logging.DEBUG)  # everything: ours, slack_sdk's, slack_bolt's, aiohttp's, httpx's
    fake = fake_slack
    h = await _harness(make_settings, fake_gateway, fake)
    try:
        fake.streaming_error = "feature_not_enabled"  # a failing call: startStream refused
        fake.download_token = "xoxb-someone-else"  # a failing download: Slack's HTML login page
        photo = fake.add_file("photo.png", "image/png", PNG)
        ts, env = fake.user_message(
            CHANNEL, f"<@{BOT_USER_ID}> hello", mention=True, files=[photo], user="U0NOBODY1"
        )  # users.info fails for this one
        await h.send(env)
        await h.settle()
        answer = fake.bot_replies(CHANNEL, ts)[-1]
        await h.click(fake.block_action(answer, controls.FEEDBACK_UP))
        await h.send(env, secret="not-the-secret")  # a forged request
        await h.settle()
    finally:
        await _close(h)
    sock = await _harness(make_settings, fake_gateway, fake, SLACK_APP_TOKEN=APP_TOKEN)
    try:
        _, env = fake.user_message(DM, "over the socket")
        await fake.push(env)
        await sock.settle()
    finally:
        await _close(sock)
    revoked = "-".join(("xoxb", "revoked", "token", "value"))  # not in this file's text: a traceback
    with pytest.raises(RuntimeError):  # a rejected token at start   # quoting it is no leak
        await _harness(make_settings, fake_gateway, fake, SLACK_BOT_TOKEN=revoked)
    records = caplog.records
    logged = (
        caplog.text
        + "\n".join(r.getMessage() for r in records)
        + "\n".join(str(r.exc_info[1]) for r in records if r.exc_info)
        + "".join(capsys.readouterr())
    )
    # The failures were logged (so this test looks at real output) ...
    for failure in ("feature_not_enabled", "files:read", "user_not_found", "invalid_auth"):
        assert failure in logged, failure
    assert any(r.name.startswith("slack_sdk") for r in records)
    # ... and no secret is in any of it.
    for secret in (BOT_TOKEN, APP_TOKEN, SIGNING_SECRET, revoked):
        assert secret not in logged


def test_the_platform_is_configured_only_with_a_bot_token() -> None:
    assert not platform_settings("slack").configured()
    assert platform_settings("slack", SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET).configured()


def test_fake_message_helpers():
    msg = FakeMessage("C1", "1.1", "U1", blocks=controls.blocks(answer_controls(7)))
    assert msg.button(controls.REGENERATE)["value"] == "regen:7"


async def test_a_message_in_a_new_thread_does_not_store_the_thread_s_first_message_twice(
    make_settings, fake_gateway, fake_slack
) -> None:
    """The first message opens the thread and is slow to build (its file downloads); the
    second, in its thread, reads the thread meanwhile and sees the first, not stored yet. The
    first is stored once (its own event supersedes the context copy), before the second."""
    fake_gateway.script(Answer(text="Nice photo.", reasoning=THOUGHT))
    h = await _harness(make_settings, fake_gateway, fake_slack)
    try:
        fake_slack.download_delay = 0.5
        photo = fake_slack.add_file("menu.png", "image/png", PNG)
        first, opening = fake_slack.user_message(CHANNEL, f"<@{BOT_USER_ID}> our new menu", mention=True, files=[photo])
        _, follow_up = fake_slack.user_message(
            CHANNEL, f"<@{BOT_USER_ID}> make it shorter", mention=True, thread_ts=first
        )
        assert (await h.send(opening)).status_code == 200
        assert (await h.send(follow_up)).status_code == 200
        await eventually(lambda: [c for c in fake_slack.calls if c.method == "conversations.replies"])
        await h.settle()
        async with h.runtime.db.read() as conn:
            stored = (
                await conn.execute(
                    select(Message.platform_message_id, Message.status)
                    .where(Message.role == "user")
                    .order_by(Message.seq)
                )
            ).all()
        assert [row.platform_message_id for row in stored] == [first, follow_up["event"]["ts"]]
        assert {row.status for row in stored} == {"answered"}
    finally:
        await _close(h)
