"""Copywriting (issue 5) end to end through the Telegram adapter: the real
python-telegram-bot Application against the fake Bot API, the real ChatService and store,
and the fake gateway scripted with structured answers and tool calls.

The harness (fake Telegram with shrunk windows, the running bot, waiting helpers) is the
Telegram tests' plugin, tests/telegram_harness.py.
"""

from __future__ import annotations

import asyncio
import json
from io import BytesIO

import pytest

from bot.copywriting.refine import ACTIONS
from bot.copywriting.styles import resolve_style
from bot.platform.surface import utf16_len
from bot.tools import Tool
from tests.fakes.gateway import Answer, FakeToolCall
from tests.fakes.telegram_api import FakeTelegram, StoredMessage
from tests.polling import eventually
from tests.telegram_harness import (
    ALICE,
    BOB,
    CAROL,
    FORUM,
    GROUP,
    THINK,
    _buttons,
    answered,
    no_limit_broken,
    user_prompt,
)
from tests.test_documents import make_pdf

XHS = resolve_style("xiaohongshu")
TOO_LONG_TITLE = "这是一个远远超过二十个字的小红书标题真的太长了不行的"  # 27 characters


def xhs(title: str, n: int = 3) -> str:
    """A structured answer of ``n`` Xiaohongshu variants titled ``title1`` … ``titleN``."""
    return json.dumps(
        {
            "variants": [
                {
                    "title": f"{title}{i}",
                    "body": f"第{i}版：桂花乌龙真的香🌼，冷泡热泡都好喝。",
                    "hashtags": ["桂花乌龙", "好茶推荐", "下午茶"],
                }
                for i in range(1, n + 1)
            ]
        },
        ensure_ascii=False,
    )


def written(tg: FakeTelegram, chat_id: int) -> list[str]:
    """Every text the bot tried to show in a chat: sends, edits and drafts."""
    return [
        c.params.get("text") or ""
        for c in tg.calls
        if c.chat_id == chat_id and c.method in ("sendMessage", "editMessageText", "sendMessageDraft")
    ]


def assert_no_raw_json(tg: FakeTelegram, chat_id: int) -> None:
    for text in written(tg, chat_id):
        assert '{"variants"' not in text and '"title":' not in text and '"hashtags":' not in text, text


def entity_text(message: StoredMessage, entity: dict) -> str:
    raw = message.text.encode("utf-16-le")
    return raw[entity["offset"] * 2 : (entity["offset"] + entity["length"]) * 2].decode("utf-16-le")


def assert_entities_valid(tg: FakeTelegram, message: StoredMessage) -> None:
    """Telegram accepted the entities (no fallback to plain text) and they sit where they should."""
    refused = [c.description for c in tg.calls if "can't parse entities" in c.description]
    assert refused == []
    for e in message.entities:
        assert 0 <= e["offset"] and e["offset"] + e["length"] <= utf16_len(message.text)


def copy_answer(tg: FakeTelegram, chat_id: int) -> StoredMessage:
    """The newest answer in a chat that carries refinement buttons."""
    with_refine = [m for m in tg.bot_messages(chat_id) if any(b.startswith("refine:") for b in _buttons(m))]
    assert with_refine, [m.text for m in tg.bot_messages(chat_id)]
    return with_refine[-1]


def last_user_content(body: dict) -> str:
    content = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)


def jpeg(color: tuple[int, int, int]) -> bytes:
    from PIL import Image

    out = BytesIO()
    Image.new("RGB", (48, 48), color).save(out, "JPEG")
    return out.getvalue()


async def set_style(tg: FakeTelegram, chat_id: int, user: dict, *, thread_id: int | None = None) -> StoredMessage:
    before = len(tg.bot_messages(chat_id))
    tg.send_user_message(
        chat_id,
        user,
        "/style xiaohongshu",
        thread_id=thread_id,
        entities=[FakeTelegram.command_entity("/style xiaohongshu")],
    )
    messages = await eventually(lambda: tg.bot_messages(chat_id)[before:])
    return messages[0]  # type: ignore[index]


# ---- (1) a style set by one member, a brief from another ---------------------------------
@pytest.mark.parametrize("addressed_by", ["mention", "copy-command"])
async def test_group_style_set_by_one_member_answers_another_members_brief(
    start_bot, tg, fake_gateway, addressed_by
) -> None:
    bot = await start_bot()
    confirmation = await set_style(tg, GROUP, ALICE)
    assert XHS.name_zh in confirmation.text and not _buttons(confirmation)
    assert fake_gateway.requests == [], "setting a style does not call the model"

    # Chatter in the group is context, not a brief, even with a style set.
    tg.send_user_message(GROUP, CAROL, "我们下周上新桂花乌龙，冷泡款")
    await bot.settle()
    assert len(tg.bot_messages(GROUP)) == 1 and fake_gateway.requests == []

    fake_gateway.script(Answer(text=xhs("秋天的第一杯"), reasoning="写三版", chunk_size=40))
    if addressed_by == "mention":
        text = f"@{tg.username} 帮我们写桂花乌龙的种草笔记"
        asked = tg.send_user_message(GROUP, BOB, text, entities=[tg.mention_entity(text)])
    else:
        text = f"/copy@{tg.username} 帮我们写桂花乌龙的种草笔记"
        asked = tg.send_user_message(GROUP, BOB, text, entities=[FakeTelegram.command_entity(text)])
    await answered(tg, GROUP)
    copy = copy_answer(tg, GROUP)

    # What the model got: the style in the stable system prompt, the brief with its sender.
    body = fake_gateway.last.body
    assert len(fake_gateway.requests) == 1
    assert XHS.system_prompt() in body["messages"][0]["content"]
    assert body.get("response_format"), "structured output was asked for"
    prompt = user_prompt(body)
    assert "[Bob] 帮我们写桂花乌龙的种草笔记" in prompt
    assert "[Carol Lee] 我们下周上新桂花乌龙" in prompt, "the group's chatter is shared context"

    # What the group sees: three rendered variants, never JSON, replying to Bob's brief.
    assert copy.reply_to == asked["message_id"]
    for i in (1, 2, 3):
        assert f"方案 {i} · 秋天的第一杯{i}" in copy.text
        assert f"第{i}版：桂花乌龙真的香🌼" in copy.text
    assert copy.text.count("#桂花乌龙 #好茶推荐 #下午茶") == 3
    assert "写三版" not in copy.text, "reasoning is not shown"
    assert_no_raw_json(tg, GROUP)
    assert_entities_valid(tg, copy)
    bold = [entity_text(copy, e) for e in copy.entities if e["type"] == "bold"]
    assert bold == ["方案 1", "秋天的第一杯1", "方案 2", "秋天的第一杯2", "方案 3", "秋天的第一杯3"]

    # One-tap refinements for each variant, then Regenerate and feedback.
    buttons = _buttons(copy)
    turn = buttons[-3].split(":")[1]
    assert buttons[:-3] == [f"refine:{turn}:{n}:{a}" for n in (1, 2, 3) for a in ACTIONS]
    assert buttons[-3:] == [f"regen:{turn}", f"fb:{turn}:1", f"fb:{turn}:-1"]
    no_limit_broken(tg)


# ---- (2) a refinement button -----------------------------------------------------------------
async def test_refinement_button_answers_in_the_same_topic_with_the_chosen_variant(start_bot, tg, fake_gateway) -> None:
    await start_bot()
    await set_style(tg, FORUM, ALICE, thread_id=7)
    fake_gateway.script(Answer(text=xhs("好喝到哭"), reasoning="写三版"))
    text = f"@{tg.username} 写桂花乌龙的种草笔记"
    asked = tg.send_user_message(FORUM, BOB, text, entities=[tg.mention_entity(text)], thread_id=7)
    await answered(tg, FORUM)
    copy = copy_answer(tg, FORUM)
    assert copy.thread_id == 7
    # Another topic of the same forum has no style: a separate conversation.
    other = f"@{tg.username} hello"
    tg.send_user_message(FORUM, CAROL, other, entities=[tg.mention_entity(other)], thread_id=9)
    await answered(tg, FORUM, 2)
    assert "response_format" not in fake_gateway.last.body

    fake_gateway.script(Answer(text=xhs("活泼版", 1), reasoning="改得活泼"))
    playful_2 = next(b for b in _buttons(copy) if b.endswith(":2:playful"))
    tg.press_button(FORUM, copy.message_id, CAROL, playful_2)
    await answered(tg, FORUM, 3)
    refined = tg.bot_messages(FORUM)[-1]

    # Answered next to the original: same topic, replying to the brief.
    assert refined.thread_id == 7 and refined.reply_to == asked["message_id"]
    assert "方案 1 · 活泼版1" in refined.text and "好喝到哭" not in refined.text
    assert [b for b in _buttons(refined) if b.startswith("refine:")] == [
        f"refine:{_buttons(refined)[-3].split(':')[1]}:1:{a}" for a in ACTIONS
    ]
    assert "On it…" in [c.params.get("text") for c in tg.calls_to("answerCallbackQuery")]
    # The model got the chosen variant (and only that one) in the refinement request, with
    # the topic's history and the style still in place.
    body = fake_gateway.last.body
    instruction = last_user_content(body)
    assert "Refine option 2" in instruction and "好喝到哭2" in instruction
    assert "好喝到哭1" not in instruction and "好喝到哭3" not in instruction
    assert "playful" in instruction
    assert XHS.system_prompt() in body["messages"][0]["content"]
    assert "[Bob] 写桂花乌龙的种草笔记" in user_prompt(body) and "hello" not in user_prompt(body)
    assert copy.text == tg.messages[FORUM][copy.message_id].text, "the original variants stay"
    assert_no_raw_json(tg, FORUM)
    assert_entities_valid(tg, refined)
    no_limit_broken(tg)


# ---- (3) a constraint violation ----------------------------------------------------------------
async def test_a_title_over_20_characters_is_fixed_by_the_model_before_it_is_shown(start_bot, tg, fake_gateway) -> None:
    await start_bot()
    await set_style(tg, ALICE["id"], ALICE)
    broken = json.loads(xhs("标题"))
    broken["variants"][1]["title"] = TOO_LONG_TITLE
    fixed = {
        "variants": [
            {
                "title": "改短的标题🌼",
                "body": "第2版改好了：桂花乌龙真的香🌼",
                "hashtags": ["桂花乌龙", "好茶推荐", "下午茶"],
            }
        ]
    }
    fake_gateway.script(
        Answer(text=json.dumps(broken, ensure_ascii=False), reasoning="写三版"),
        Answer(text=json.dumps(fixed, ensure_ascii=False), reasoning="改短标题"),
    )
    tg.send_user_message(ALICE["id"], ALICE, "写桂花乌龙的种草笔记")
    await answered(tg, ALICE["id"])

    assert len(fake_gateway.requests) == 2, "the broken variant went back to the model once"
    fix_request = last_user_content(fake_gateway.requests[1].body)
    assert "方案 2" in fix_request and "the limit is 20" in fix_request and "方案 1:" not in fix_request
    assert TOO_LONG_TITLE in json.dumps(fake_gateway.requests[1].body["messages"], ensure_ascii=False)
    copy = copy_answer(tg, ALICE["id"])
    assert "方案 2 · 改短的标题🌼" in copy.text and "第2版改好了" in copy.text
    assert "方案 1 · 标题1" in copy.text and "方案 3 · 标题3" in copy.text
    assert "⚠️" not in copy.text, "nothing is left outside the limits"
    for text in written(tg, ALICE["id"]):
        assert TOO_LONG_TITLE not in text, "the broken title was never shown, not even in a draft"
    assert len(tg.bot_messages(ALICE["id"])) == 2  # the /style confirmation and the copy
    assert_no_raw_json(tg, ALICE["id"])
    assert_entities_valid(tg, copy)


# ---- (4) a PDF summarised ---------------------------------------------------------------------
def pdf_document(tg: FakeTelegram, data: bytes, name: str) -> dict:
    file_id = tg.add_file(data, suffix="pdf")
    return {
        "document": {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_name": name,
            "mime_type": "application/pdf",
            "file_size": len(data),
        }
    }


async def test_a_pdf_sent_in_a_private_chat_is_summarised(start_bot, tg, fake_gateway) -> None:
    pages = ["Quarterly revenue grew 12 percent.", "Churn fell to 3 percent.", "Hiring paused in Q4."]
    summary = "**Summary:** revenue up 12%, churn down to 3%, hiring paused."
    fake_gateway.script(Answer(text=summary, reasoning=THINK))
    await start_bot()
    extra = {**pdf_document(tg, make_pdf(pages), "q3-report.pdf"), "caption": "summarise this report"}
    tg.send_user_message(ALICE["id"], ALICE, None, extra=extra)
    [final] = await answered(tg, ALICE["id"])

    body = fake_gateway.last.body
    prompt = user_prompt(body)
    assert "summarise this report" in prompt
    assert '<document name="q3-report.pdf">' in prompt
    for page in pages:
        assert page in prompt, "every page's text reached the model"
    assert final.text == "Summary: revenue up 12%, churn down to 3%, hiring paused."
    assert [entity_text(final, e) for e in final.entities if e["type"] == "bold"] == ["Summary:"]
    assert [c.params["file_id"] for c in tg.calls_to("getFile") if c.ok] == [extra["document"]["file_id"]]


async def test_an_unreadable_pdf_gets_a_clear_answer_and_the_question_still_goes_through(
    start_bot, tg, fake_gateway
) -> None:
    fake_gateway.script(Answer(text="I could not see the report's contents.", reasoning=THINK))
    await start_bot()
    extra = {
        **pdf_document(tg, b"%PDF-1.4\nthis is not really a pdf", "broken.pdf"),
        "caption": "summarise this report",
    }
    tg.send_user_message(ALICE["id"], ALICE, None, extra=extra)
    messages = await answered(tg, ALICE["id"])
    notice = messages[0]
    assert "broken.pdf" in notice.text and not _buttons(notice), "one clear sentence about the file"
    assert "Traceback" not in notice.text
    assert "summarise this report" in user_prompt(fake_gateway.last.body)
    assert messages[-1].text == "I could not see the report's contents."


# ---- (5) a tool timeout -------------------------------------------------------------------------
async def test_a_tool_timeout_goes_back_to_the_model_and_the_answer_arrives(start_bot, tg, fake_gateway) -> None:
    bot = await start_bot(BOT_TOOL_TIMEOUT=0.3)
    started: list[float] = []

    async def slow_lookup(**_: object) -> str:
        import time

        started.append(time.monotonic())
        await asyncio.sleep(30)
        return "never"

    registry = bot.service.tools
    assert registry is not None and "calculator" in registry.names
    registry.add(
        Tool("slow_lookup", "Looks up last year's sales (slow).", {"type": "object", "properties": {}}, slow_lookup)
    )
    fake_gateway.script(
        Answer(
            text="",
            reasoning="I need the numbers.",
            interleave_tool_calls=True,
            chunk_size=6,
            tool_calls=[
                FakeToolCall("calculator", {"expression": "12*7"}, id="c1"),
                FakeToolCall("slow_lookup", {}, id="s1"),
            ],
        ),
        Answer(text="12 × 7 = **84**; last year's sales could not be looked up in time.", reasoning="ok"),
    )
    tg.send_user_message(ALICE["id"], ALICE, "what is 12*7, and last year's sales?")
    [final] = await answered(tg, ALICE["id"])

    assert final.text == "12 × 7 = 84; last year's sales could not be looked up in time."
    assert started, "the slow tool ran"
    first, second = (r.body for r in fake_gateway.requests)
    assert "slow_lookup" in [t["function"]["name"] for t in first["tools"]]
    results = [m for m in second["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in results] == ["c1", "s1"]
    assert "84" in results[0]["content"]
    assert "slow_lookup did not finish within 0.3 seconds" in results[1]["content"]
    # Typing showed while the model and the tools worked, and stopped with the answer.
    typing = tg.calls_to("sendChatAction", ALICE["id"])
    assert typing and all(c.params["action"] == "typing" for c in typing)
    assert any(c.at < started[0] + 0.3 for c in typing), "typing showed while the tool ran"
    answer_sent = max(c.at for c in tg.calls_to("sendMessage", ALICE["id"]) if c.ok)
    # The behaviour under test: over 2.5 refresh periods after the answer, no typing is sent.
    await asyncio.sleep(2.5 * bot.adapter.budgets.pacing.typing_refresh)
    assert [c for c in tg.calls_to("sendChatAction", ALICE["id"]) if c.at > answer_sent] == []
    no_limit_broken(tg)


# ---- (6) a product photo and a brief ----------------------------------------------------------
async def test_a_product_photo_and_a_brief_become_variants_through_vision(start_bot, tg, fake_gateway) -> None:
    await start_bot()
    await set_style(tg, ALICE["id"], ALICE)
    fake_gateway.script(Answer(text=xhs("这杯茶"), reasoning="看图写三版"))
    sizes = tg.photo_sizes(jpeg((200, 140, 60)))
    tg.send_user_message(ALICE["id"], ALICE, None, extra={"photo": sizes, "caption": "写一篇种草文案"})
    await answered(tg, ALICE["id"])

    body = fake_gateway.last.body
    assert body.get("response_format") and XHS.system_prompt() in body["messages"][0]["content"]
    content = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    assert isinstance(content, list)
    images = [b for b in content if b.get("type") == "image_url"]
    assert len(images) == 1 and images[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert "写一篇种草文案" in " ".join(b.get("text", "") for b in content if b.get("type") == "text")
    assert [c.params["file_id"] for c in tg.calls_to("getFile") if c.ok] == [sizes[-1]["file_id"]], (
        "the largest size was downloaded"
    )

    copy = copy_answer(tg, ALICE["id"])
    for i in (1, 2, 3):
        assert f"方案 {i} · 这杯茶{i}" in copy.text
    assert len([b for b in _buttons(copy) if b.startswith("refine:")]) == 3 * len(ACTIONS)
    assert_no_raw_json(tg, ALICE["id"])
    assert_entities_valid(tg, copy)
    no_limit_broken(tg)


# ---- a refinement queued behind another, or regenerated, stays a refinement ----


async def _copy_then_refine_buttons(tg: FakeTelegram, fake_gateway) -> StoredMessage:
    await set_style(tg, GROUP, ALICE)
    fake_gateway.script(Answer(text=xhs("好喝到哭"), reasoning="写三版"))
    text = f"@{tg.username} 写桂花乌龙的种草笔记"
    tg.send_user_message(GROUP, BOB, text, entities=[tg.mention_entity(text)])
    await answered(tg, GROUP)
    return copy_answer(tg, GROUP)


async def test_a_second_refinement_tapped_while_the_first_is_written_is_a_refinement_too(
    start_bot, tg, fake_gateway
) -> None:
    from bot.platform.messages import ConversationKey

    bot = await start_bot()
    copy = await _copy_then_refine_buttons(tg, fake_gateway)
    first_done = asyncio.Event()
    fake_gateway.script(
        Answer(text=xhs("短版", 1), reasoning="改短", wait_for=first_done),
        Answer(text=xhs("正式版", 1), reasoning="改正式"),
        Answer(text=xhs("不该有", 3), reasoning="多余的一轮"),
    )
    buttons = _buttons(copy)
    tg.press_button(GROUP, copy.message_id, BOB, next(b for b in buttons if b.endswith(":1:shorter")))
    await fake_gateway.wait_for_requests(2)
    tg.press_button(GROUP, copy.message_id, CAROL, next(b for b in buttons if b.endswith(":3:formal")))
    key = ConversationKey("telegram", str(tg.bot_id), str(GROUP), "")

    async def queued() -> bool:
        conv = await bot.service.store.conversation(key, create=False)
        history = await bot.service.store.history(conv.id)
        return any(m.status == "pending" and "Refine option 3" in (p.text or "") for m in history for p in m.parts)

    await eventually(queued, timeout=5)
    first_done.set()
    await answered(tg, GROUP, 3)
    await bot.settle()
    second = tg.bot_messages(GROUP)[-1]
    assert "方案 1 · 正式版1" in second.text and "方案 2" not in second.text
    assert len([b for b in _buttons(second) if b.startswith("refine:")]) == len(ACTIONS)
    assert len(fake_gateway.requests) == 3, "no retry asking a refinement for 3 variants"


async def test_regenerate_on_a_refined_answer_refines_again(start_bot, tg, fake_gateway) -> None:
    bot = await start_bot()
    copy = await _copy_then_refine_buttons(tg, fake_gateway)
    fake_gateway.script(Answer(text=xhs("短版", 1), reasoning="改短"))
    tg.press_button(GROUP, copy.message_id, BOB, next(b for b in _buttons(copy) if b.endswith(":1:shorter")))
    await answered(tg, GROUP, 2)
    refined = tg.bot_messages(GROUP)[-1]
    fake_gateway.script(
        Answer(text=xhs("再短一版", 1), reasoning="再改短"), Answer(text=xhs("不该有", 3), reasoning="多余的一轮")
    )
    tg.press_button(GROUP, refined.message_id, BOB, _buttons(refined)[-3])  # Regenerate
    await answered(tg, GROUP, 3)
    await bot.settle()
    again = tg.bot_messages(GROUP)[-1]
    assert "方案 1 · 再短一版1" in again.text and "方案 2" not in again.text
    assert len(fake_gateway.requests) == 3, "no retry asking a refinement for 3 variants"
