"""Issue 5 (copywriting, documents, tools) through Slack: real slack-bolt / slack-sdk against
the fake Slack API, the real core and store, and the fake gateway's scripted answers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest

from adapters.slack import controls
from bot.copywriting.refine import ACTIONS
from bot.platform.controls import Press
from bot.tools import Tool
from tests.fakes.gateway import Answer, FakeToolCall, last_user_text
from tests.fakes.slack_api import BOT_USER_ID, FakeMessage, FakeSlack
from tests.polling import eventually
from tests.slack_harness import CHANNEL, DM, Harness, _close, _harness
from tests.test_documents import make_pdf

BOB, CAROL = "U0BOB0001", "U0CAROL01"


def xhs(title: str, n: int = 3) -> str:
    """A Xiaohongshu answer as the model writes it: JSON with ``n`` variants."""
    variants = [
        {
            "title": f"{title}{i}",
            "body": f"第{i}版：桂花乌龙真的香🌼，冷泡热泡都好喝。",
            "hashtags": ["桂花乌龙", "好茶推荐", "下午茶"],
        }
        for i in range(1, n + 1)
    ]
    return json.dumps({"variants": variants}, ensure_ascii=False)


def everything_shown(fake: FakeSlack) -> str:
    """Every text the bot sent to Slack (chat.* calls: text, markdown, blocks), successful or not."""
    shown = []
    for call in fake.calls:
        if call.method.startswith("chat."):
            shown += [str(call.args.get(k) or "") for k in ("text", "markdown_text")]
            shown.append(json.dumps(call.args.get("blocks") or [], ensure_ascii=False))
    return "\n".join(shown)


def assert_no_raw_json(fake: FakeSlack) -> None:
    shown = everything_shown(fake)
    for raw in ('{"variants"', '"variants":', '"hashtags":', '"title":'):
        assert raw not in shown, raw


def anchors(fake: FakeSlack, channel: str) -> list[FakeMessage]:
    """The bot's top-level messages in ``channel`` (slash commands' anchors)."""
    return sorted(
        (m for m in fake.messages.values() if m.bot and m.channel == channel and not m.thread_ts),
        key=lambda m: float(m.ts),
    )


def refine_option(message: FakeMessage, variant: int, action: str) -> str:
    select = message.element(f"answer_refine_{variant}")
    return next(
        o["value"]
        for o in select["options"]
        if (p := Press.decode(o["value"])) is not None and p.args == (str(variant), action)
    )


@pytest.fixture
async def socket_slack(make_settings, fake_gateway, fake_slack) -> AsyncIterator[Harness]:
    from tests.fakes.slack_api import APP_TOKEN

    h = await _harness(make_settings, fake_gateway, fake_slack, SLACK_APP_TOKEN=APP_TOKEN)
    yield h
    await _close(h)


# --- styles, variants, refinements ----------------------------------------------------------


async def test_style_slash_command_starts_a_thread_whose_members_share_it(slack: Harness):
    fake, gw = slack.fake, slack.gateway
    started = time.monotonic()
    response = await slack.command(fake.slash_command(CHANNEL, "/style", "xiaohongshu"))
    assert response.status_code == 200 and time.monotonic() - started < 3  # acked at once
    await slack.settle()
    [anchor] = anchors(fake, CHANNEL)
    assert "<@U0ALICE01>" in anchor.text and "/style xiaohongshu" in anchor.text
    [confirmation] = fake.bot_replies(CHANNEL, anchor.ts)
    assert "小红书" in confirmation.text or "Xiaohongshu" in confirmation.text
    # Bob, another member, writes a brief in that thread without mentioning the bot.
    gw.script(Answer(text=xhs("秋天的第一杯"), reasoning="写三版"))
    _, brief = fake.user_message(CHANNEL, "帮我们写桂花乌龙的种草笔记", user=BOB, thread_ts=anchor.ts)
    await slack.send(brief)
    await slack.settle()
    request = gw.last.json
    assert "小红书" in request["messages"][0]["content"]  # the thread's style, in the system prompt
    assert "response_format" in request
    assert "[Bob] 帮我们写桂花乌龙的种草笔记" in json.dumps(request["messages"], ensure_ascii=False)
    copy = fake.bot_replies(CHANNEL, anchor.ts)[-1]
    assert all(f"秋天的第一杯{i}" in copy.text for i in (1, 2, 3))
    assert "写三版" not in copy.text  # no reasoning either
    assert_no_raw_json(fake)
    for number in (1, 2, 3):
        assert len(copy.element(f"answer_refine_{number}")["options"]) == len(ACTIONS)
    assert controls.REGENERATE in copy.button_ids


async def test_a_refinement_answers_in_the_thread_with_the_chosen_variant(slack: Harness):
    fake, gw = slack.fake, slack.gateway
    ts, mention = fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> !style xiaohongshu", mention=True)
    await slack.send(mention)
    await slack.settle()
    gw.script(Answer(text=xhs("好喝到哭"), reasoning="写三版"))
    _, brief = fake.user_message(CHANNEL, "写桂花乌龙", user=BOB, thread_ts=ts)
    await slack.send(brief)
    await slack.settle()
    copy = fake.bot_replies(CHANNEL, ts)[-1]
    gw.script(Answer(text=xhs("短版", 1), reasoning="改短"))
    started = time.monotonic()
    pick = fake.block_action(copy, "answer_refine_2", user=CAROL, option=refine_option(copy, 2, "shorter"))
    assert (await slack.click(pick)).status_code == 200 and time.monotonic() - started < 3
    await slack.settle()
    instruction = last_user_text(gw.last.json)
    assert "好喝到哭2" in instruction  # the chosen variant, quoted for the model
    assert "好喝到哭1" not in instruction and "好喝到哭3" not in instruction
    refined = fake.bot_replies(CHANNEL, ts)[-1]
    assert refined.ts != copy.ts and refined.thread_ts == ts  # a new answer in the same thread
    assert "短版1" in refined.text and "好喝到哭" not in refined.text
    assert refined.element("answer_refine_1") and "answer_refine_2" not in refined.button_ids
    assert_no_raw_json(fake)


async def test_text_forms_of_the_style_command_work_inside_a_thread(slack: Harness):
    fake, gw = slack.fake, slack.gateway
    ts, mention = fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> let's write some posts", mention=True)
    await slack.send(mention)
    await slack.settle()
    # Slack refuses slash commands in threads; "!style" and "@bot /style" are the ways in.
    _, bang = fake.user_message(CHANNEL, "!style weibo", user=BOB, thread_ts=ts)
    await slack.send(bang)
    await slack.settle()
    assert "微博" in fake.bot_replies(CHANNEL, ts)[-1].text or "Weibo" in fake.bot_replies(CHANNEL, ts)[-1].text
    _, show = fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> /style show", user=CAROL, thread_ts=ts, mention=True)
    await slack.send(show)
    await slack.settle()
    assert "Current style" in fake.bot_replies(CHANNEL, ts)[-1].text
    gw.script(
        Answer(
            text=json.dumps(
                {"variants": [{"body": f"第{i}条微博，秋天就要喝桂花乌龙", "hashtags": ["秋天"]} for i in (1, 2, 3)]},
                ensure_ascii=False,
            )
        )
    )
    _, brief = fake.user_message(CHANNEL, "写条微博", user=CAROL, thread_ts=ts)
    await slack.send(brief)
    await slack.settle()
    assert "第3条微博" in fake.bot_replies(CHANNEL, ts)[-1].text
    _, off = fake.user_message(CHANNEL, "!style off", thread_ts=ts)
    await slack.send(off)
    await slack.settle()
    _, chat = fake.user_message(CHANNEL, "thanks, that's all", thread_ts=ts)
    await slack.send(chat)
    await slack.settle()
    assert "response_format" not in gw.last.json
    assert fake.bot_replies(CHANNEL, ts)[-1].text.startswith("echo:")
    assert_no_raw_json(fake)


async def test_copy_slash_command_over_socket_mode_and_a_channel_without_the_bot(socket_slack: Harness):
    fake, gw = socket_slack.fake, socket_slack.gateway
    gw.script(Answer(text=xhs("桂花"), reasoning="写三版"))
    await fake.push(
        fake.slash_command(CHANNEL, "/copy", "xiaohongshu 桂花乌龙茶种草笔记", user=BOB), kind="slash_commands"
    )  # returns once acked
    await socket_slack.settle()
    [anchor] = anchors(fake, CHANNEL)
    assert "/copy xiaohongshu 桂花乌龙茶种草笔记" in anchor.text
    [copy] = fake.bot_replies(CHANNEL, anchor.ts)  # the style named first is the thread's now
    assert "桂花乌龙茶种草笔记" in last_user_text(gw.last.json) and "小红书" in gw.last.json["messages"][0]["content"]
    assert all(f"桂花{i}" in copy.text for i in (1, 2, 3)) and copy.element("answer_refine_3")
    # In a channel the bot was never invited to, the user alone gets told what to do.
    fake.channels_without_bot.add("C0PRIVATE1")
    await fake.push(fake.slash_command("C0PRIVATE1", "/style", "weibo"), kind="slash_commands")
    await socket_slack.settle()
    assert anchors(fake, "C0PRIVATE1") == []
    [reply] = fake.responses
    assert reply["response_type"] == "ephemeral" and "/invite" in reply["text"] and "!style" in reply["text"]
    assert_no_raw_json(fake)


async def test_a_constraint_violation_is_fixed_before_anything_is_shown(slack: Harness):
    fake, gw = slack.fake, slack.gateway
    ts, setup = fake.user_message(DM, "!style xiaohongshu")
    await slack.send(setup)
    await slack.settle()
    too_long_title = "这是一个远远超过二十个字的小红书标题真的太长了不行的"
    first = json.loads(xhs("标题"))
    first["variants"][0]["title"] = too_long_title
    fixed = {"variants": [{"title": "改短的标题", "body": "正文🌼", "hashtags": ["a", "b", "c"]}]}
    gw.script(
        Answer(text=json.dumps(first, ensure_ascii=False), reasoning="写"),
        Answer(text=json.dumps(fixed, ensure_ascii=False), reasoning="改"),
    )
    _, brief = fake.user_message(DM, "写桂花乌龙", thread_ts=ts)
    await slack.send(brief)
    await slack.settle()
    assert len(gw.requests) == 2
    assert "20" in json.dumps(gw.requests[1].json["messages"], ensure_ascii=False)  # sent back with the limit
    shown = fake.bot_replies(DM, ts)[-1].text
    assert "改短的标题" in shown and "标题2" in shown
    assert too_long_title not in everything_shown(fake)  # never shown, not even while streaming
    assert_no_raw_json(fake)


# --- documents -----------------------------------------------------------------------------------


async def test_a_pdf_shared_in_a_dm_is_summarised(slack: Harness):
    fake, gw = slack.fake, slack.gateway
    pdf = fake.add_file(
        "report.pdf", "application/pdf", make_pdf(["Quarterly revenue grew 12 percent.", "Churn fell to 3 percent."])
    )
    gw.script(Answer(text="**Summary:** revenue +12%, churn down to 3%.", reasoning="summarise"))
    ts, env = fake.user_message(DM, "summarise this report", files=[pdf])
    await slack.send(env)
    await slack.settle()
    assert fake.calls_to("files.download")
    prompt = json.dumps(gw.last.json["messages"][-1], ensure_ascii=False)
    assert "Quarterly revenue grew 12 percent." in prompt and "Churn fell to 3 percent." in prompt
    assert "summarise this report" in prompt
    [answer] = fake.bot_replies(DM, ts)
    assert answer.text == "**Summary:** revenue +12%, churn down to 3%."


# --- tools and the status line -------------------------------------------------------------------


async def test_tool_progress_shows_in_a_channel_thread_and_a_timeout_goes_back_to_the_model(
    make_settings, fake_gateway, fake_slack
):
    h = await _harness(make_settings, fake_gateway, fake_slack, BOT_TOOL_TIMEOUT=0.3)
    fake, gw = fake_slack, fake_gateway
    fake.status_clears_on_reply = False  # prove the adapter clears it itself
    seen_while_running: list[str] = []
    thread = ""

    def task_states() -> dict[str, dict]:
        tasks: dict[str, dict] = {}
        for message in fake.bot_replies(CHANNEL, thread):
            tasks.update(message.tasks())
        return tasks

    async def slow_lookup(**_: object) -> str:
        # Progress is cosmetic and drawn beside the work, not before it: wait for it.
        await eventually(lambda: task_states().get("s1", {}).get("status") == "in_progress", timeout=5)
        seen_while_running.append(dict(task_states().get("s1", {})))
        await asyncio.sleep(10)  # a tool slower than its timeout: the behaviour under test
        return "never"

    h.service.tools.add(
        Tool("slow_lookup", "Looks up market data (slowly).", {"type": "object", "properties": {}}, slow_lookup)
    )
    try:
        gw.script(
            Answer(text="", reasoning="look it up", tool_calls=[FakeToolCall("slow_lookup", {}, id="s1")]),
            Answer(text="The lookup timed out, so here is my best guess.", reasoning="ok"),
        )
        thread, env = fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> how big is the tea market?", mention=True)
        started = time.monotonic()
        await h.send(env)
        await h.settle()
        assert time.monotonic() - started < 5  # the 10 s tool was cut at its timeout
        # Visible while the tool ran: a task in the answer's native stream (a timeline).
        assert seen_while_running == [
            {"type": "task_update", "id": "s1", "title": "slow_lookup", "status": "in_progress"}
        ]
        stream = next(m for m in fake.bot_replies(CHANNEL, thread) if m.tasks())
        assert stream.task_display_mode == "timeline"
        assert stream.tasks()["s1"]["status"] == "error"  # and that it failed, and why
        assert "did not finish within 0.3 seconds" in stream.tasks()["s1"]["details"]
        tool_result = next(m for m in gw.requests[1].json["messages"] if m["role"] == "tool")
        assert tool_result["tool_call_id"] == "s1" and "did not finish within 0.3 seconds" in tool_result["content"]
        assert h.reply_text(CHANNEL, thread) == "The lookup timed out, so here is my best guess."
        assert fake.status[(CHANNEL, thread)] == ""
    finally:
        await _close(h)


async def test_status_is_cleared_when_the_model_fails_after_a_tool(slack: Harness):
    fake, gw = slack.fake, slack.gateway
    fake.status_clears_on_reply = False
    gw.script(
        Answer(text="", reasoning="compute", tool_calls=[FakeToolCall("calculator", {"expression": "12*7"})]),
        Answer(status=401, error_body={"error": {"message": "bad key"}}),
    )
    ts, env = fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> what is 12 times 7?", mention=True)
    await slack.send(env)
    await slack.settle()
    tasks = {k: v for m in fake.bot_replies(CHANNEL, ts) for k, v in m.tasks().items()}
    assert [(t["title"], t["status"]) for t in tasks.values()] == [("calculator", "complete")]
    assert fake.status[(CHANNEL, ts)] == ""
    tool_result = next(m for m in gw.requests[1].json["messages"] if m["role"] == "tool")
    assert "84" in tool_result["content"]
    last = fake.bot_replies(CHANNEL, ts)[-1]
    assert "key" in last.text.lower() and controls.REGENERATE not in last.button_ids


async def test_without_native_streams_tool_steps_show_on_the_status_line(slack: Harness):
    fake, gw = slack.fake, slack.gateway
    fake.streaming_error = "feature_not_enabled"  # the workspace refuses chat.startStream
    fake.status_clears_on_reply = False
    gw.script(
        Answer(text="", reasoning="compute", tool_calls=[FakeToolCall("calculator", {"expression": "12*7"})]),
        Answer(text="84.", reasoning="ok"),
    )
    ts, env = fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> what is 12 times 7?", mention=True)
    await slack.send(env)
    await slack.settle()
    statuses = [s for c, t, s in fake.status_history if (c, t) == (CHANNEL, ts)]
    assert any(s.startswith("🔧 calculator") for s in statuses), statuses  # which tool, on the status line
    assert fake.status[(CHANNEL, ts)] == ""
    assert slack.reply_text(CHANNEL, ts) == "84."
    assert not any(m.chunks for m in fake.bot_replies(CHANNEL, ts))
