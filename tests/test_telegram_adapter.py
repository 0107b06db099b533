"""The Telegram adapter end to end: the real python-telegram-bot Application against the
fake Bot API server, the real ChatService and store, and the fake gateway (harness in
tests/telegram_harness.py).

Telegram's limit windows (in the fake) and the adapter's pacing are shrunk by the same
factor, so the tests run fast while every limit still binds; the 429 test keeps a real,
whole-second retry_after.
"""

from __future__ import annotations

import asyncio
import json
import time
from io import BytesIO

import httpx
import pytest
from sqlalchemy import select

from bot.platform.messages import Author, ConversationKey, IncomingMessage
from bot.platform.surface import utf16_len
from bot.process.runtime import build_runtime
from bot.process.webapp import create_app
from bot.store.models import Conversation, Turn
from tests.fakes.gateway import Answer
from tests.fakes.telegram_api import NOT_MODIFIED, FakeTelegram
from tests.platforms import connect, platform_settings
from tests.polling import eventually
from tests.telegram_harness import (
    ALICE,
    BOB,
    CAROL,
    FORUM,
    GROUP,
    OTHER_BOT,
    THINK,
    _buttons,
    answered,
    no_limit_broken,
    user_prompt,
)

WEBHOOK_URL = "https://bot.example.com/telegram/webhook"
SECRET = "s3cret_token-XYZ"


# ---- private chats -----------------------------------------------------------------------
async def test_private_chat_streams_a_draft_and_ends_with_a_formatted_message(start_bot, tg, fake_gateway) -> None:
    answer = "Here is **your slogan**: 好喝的茶 🍵, every day. " * 6
    fake_gateway.script(Answer(text=answer, reasoning="They want a slogan.", chunk_size=12, chunk_delay=0.03))
    bot = await start_bot()
    tg.send_user_message(ALICE["id"], ALICE, "write a slogan for tea")

    [final] = await answered(tg, ALICE["id"])
    drafts = tg.calls_to("sendMessageDraft", ALICE["id"])
    assert len(drafts) >= 2, "the answer streams as a draft"
    shown = [c.params["text"] for c in drafts if c.ok]
    plain = answer.strip()
    assert all(plain.startswith(draft) for draft in shown), "every draft is a prefix of the answer, as sent"
    assert [len(d) for d in shown] == sorted(len(d) for d in shown), "drafts only grow"
    assert all("entities" not in c.params and "parse_mode" not in c.params for c in drafts), (
        "intermediate drafts are plain text, never parsed"
    )
    assert "**" in "".join(shown)
    # The final message is Markdown rendered to entities, with the answer's buttons.
    assert final.text == answer.replace("**", "").strip()
    bold = [e for e in final.entities if e["type"] == "bold"]
    assert len(bold) == 6 and all(e["length"] == len("your slogan") for e in bold)
    first = final.text.index("your slogan")
    assert bold[0]["offset"] == utf16_len(final.text[:first])
    assert _buttons(final)[0].startswith("regen:") and len(_buttons(final)) == 3
    assert len(tg.bot_messages(ALICE["id"])) == 1, "drafts leave exactly one message"
    assert tg.calls_to("sendChatAction", ALICE["id"]), "typing while the model reasons"
    assert "slogan" in user_prompt(fake_gateway.last.body)
    no_limit_broken(tg)
    turn_id = int(_buttons(final)[0].split(":")[1])
    await bot.service.wait_turn(turn_id)  # its buttons show just before its last save
    turn = await bot.service.store.turn(turn_id)
    assert turn is not None and turn.pages == (str(final.message_id),), "the one message is stored with its turn"


async def test_refused_drafts_fall_back_to_send_and_edit_with_a_stop_button(start_bot, tg, fake_gateway) -> None:
    tg.drafts_allowed = False
    # Telegram may still say "not modified" (e.g. after a retried edit): not an error.
    tg.inject("editMessageText", status=400, description=NOT_MODIFIED, chat_id=ALICE["id"])
    text = "First line of a longer answer. " * 12
    fake_gateway.script(
        Answer(text=text, reasoning=THINK, chunk_size=10, chunk_delay=0.05), Answer(text="second answer")
    )
    await start_bot()
    tg.send_user_message(ALICE["id"], ALICE, "hello")
    [final] = await answered(tg, ALICE["id"])
    assert final.text == text.strip()
    assert final.edits >= 1, "the answer was streamed by editing its message"
    assert any(c.description == NOT_MODIFIED for c in tg.calls_to("editMessageText"))
    sends = [c for c in tg.calls_to("sendMessage", ALICE["id"]) if c.ok]
    assert sends[0].params["reply_markup"]["inline_keyboard"][0][0]["callback_data"].startswith("stop:")
    edits = [
        repr((c.params["text"], c.params.get("entities"), c.params.get("reply_markup")))
        for c in tg.calls_to("editMessageText", ALICE["id"])
    ]
    assert len(edits) == len(set(edits)), "no identical edit is sent twice"
    drafts_before = len(tg.calls_to("sendMessageDraft"))
    tg.send_user_message(ALICE["id"], ALICE, "again")
    await answered(tg, ALICE["id"], 2)
    assert len(tg.calls_to("sendMessageDraft")) == drafts_before, "a refusing chat is not asked again"
    no_limit_broken(tg)


async def test_a_10000_character_chinese_answer_with_emoji_is_split_whole(start_bot, tg, fake_gateway) -> None:
    sentence = "这款茶叶香气清新，口感醇厚😀，适合每天饮用。"
    paragraph = sentence * 9 + "🍵\n\n"
    text = (paragraph * 60)[:10_000]
    assert len(text) == 10_000 and not text[-1].isspace()  # ten thousand characters, as asked
    emoji = text.count("😀") + text.count("🍵")
    assert emoji > 400 and utf16_len(text) == 10_000 + emoji  # two UTF-16 units each: code points under-count
    fake_gateway.script(Answer(text=text, chunk_size=400))
    await start_bot(TELEGRAM_DRAFTS=False)
    tg.send_user_message(ALICE["id"], ALICE, "写一篇很长的文章")
    messages = await answered(tg, ALICE["id"], timeout=30)
    assert len(messages) >= 3
    assert all(utf16_len(m.text) <= 4096 for m in messages)
    assert "".join(m.text for m in messages).replace("\n", "") == text.replace("\n", "")
    for m in messages[:-1]:
        assert m.text.endswith(("。", "🍵", "😀", "，")), "split at a paragraph or sentence boundary"
    assert _buttons(messages[-1])[0].startswith("regen:") and not _buttons(messages[0])
    no_limit_broken(tg)


async def test_429_mid_stream_pauses_only_that_chat_and_the_answer_completes(start_bot, tg, fake_gateway) -> None:
    text = "Step by step, the answer grows. " * 30
    fake_gateway.script(Answer(text=text, reasoning=THINK, chunk_size=16, chunk_delay=0.03))
    # A real, whole-second retry_after on an edit in the middle of Alice's answer.
    tg.inject("editMessageText", status=429, retry_after=2, chat_id=ALICE["id"])
    await start_bot(TELEGRAM_DRAFTS=False)
    tg.send_user_message(ALICE["id"], ALICE, "explain")
    refused = (await eventually(lambda: [c for c in tg.calls if c.status == 429]))[0]
    # Another chat keeps being answered while Alice's chat waits.
    tg.send_user_message(BOB["id"], BOB, "meanwhile in another chat")
    [bob_answer] = await answered(tg, BOB["id"])
    bob_final = [c for c in tg.calls if c.chat_id == BOB["id"] and c.method == "sendMessage"][-1]
    assert bob_final.at < refused.at + 2.0, "the 429 paused only Alice's chat"
    [final] = await answered(tg, ALICE["id"], timeout=20)
    assert final.text == text.strip()
    assert [c for c in tg.calls if c.status == 429] == [refused] and refused.injected
    after = [
        c
        for c in tg.calls
        if c.chat_id == ALICE["id"] and c.at > refused.at and c.method in ("sendMessage", "editMessageText")
    ]
    assert after and after[0].at - refused.at >= 2.0, "nothing written to the chat before retry_after"
    assert bob_answer.text.startswith("echo")
    no_limit_broken(tg)


async def test_reasoning_is_shown_collapsed_above_the_answer(start_bot, tg, fake_gateway) -> None:
    fake_gateway.script(Answer(text="Answer with **bold** 😀.", reasoning="Step one. Step two 🤔."))
    await start_bot(BOT_SHOW_REASONING=True)
    tg.send_user_message(ALICE["id"], ALICE, "why?")
    [final] = await answered(tg, ALICE["id"])
    assert final.text.startswith("Step one. Step two 🤔.\n\nAnswer with bold 😀.")
    quote = final.entities[0]
    assert quote["type"] == "expandable_blockquote" and quote["offset"] == 0
    assert quote["length"] == utf16_len("Step one. Step two 🤔.")
    bold = [e for e in final.entities if e["type"] == "bold"][0]
    assert bold["offset"] == utf16_len("Step one. Step two 🤔.\n\nAnswer with ") and bold["length"] == 4
    drafts = [c.params.get("text", "") for c in tg.calls_to("sendMessageDraft")]
    assert all("Step one" not in d for d in drafts), "reasoning never streams as answer text"


async def test_refused_entities_are_resent_as_plain_text(start_bot, tg, fake_gateway) -> None:
    fake_gateway.script(Answer(text="Answer with **bold**."))
    tg.inject(
        "editMessageText",
        status=400,
        chat_id=ALICE["id"],
        description="Bad Request: can't parse entities: can't find end of the entity",
    )
    await start_bot(TELEGRAM_DRAFTS=False)
    tg.send_user_message(ALICE["id"], ALICE, "hi")
    [final] = await answered(tg, ALICE["id"])
    assert final.text == "Answer with bold." and not final.entities, "the answer still arrives, unformatted"


async def test_stop_command_ends_a_streaming_draft(start_bot, tg, fake_gateway) -> None:
    fake_gateway.script(Answer(text="word " * 400, reasoning=THINK, chunk_size=5, chunk_delay=0.01))
    await start_bot()
    tg.send_user_message(ALICE["id"], ALICE, "write a lot")
    await eventually(lambda: [c for c in tg.calls_to("sendMessageDraft") if c.ok])
    tg.send_user_message(ALICE["id"], ALICE, "/stop", entities=[FakeTelegram.command_entity("/stop")])
    [final] = await answered(tg, ALICE["id"])
    assert final.text.startswith("word") and final.text.endswith("(stopped)")
    assert len(fake_gateway.requests) == 1, "/stop is not sent to the model"


async def test_unsupported_content_and_ignored_updates(start_bot, tg, fake_gateway) -> None:
    bot = await start_bot()
    tg.send_user_message(
        ALICE["id"], ALICE, None, extra={"voice": {"file_id": "v1", "file_unique_id": "uv1", "duration": 3}}
    )
    reply = await eventually(lambda: tg.bot_messages(ALICE["id"]))
    assert "voice" in reply[0].text and not _buttons(reply[0])
    # Group: a sticker nobody addressed to the bot gets silence.
    tg.send_user_message(
        GROUP,
        BOB,
        None,
        extra={
            "sticker": {
                "file_id": "s1",
                "file_unique_id": "us1",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "type": "regular",
            }
        },
    )
    # Another bot's message and an edited message are not answered either.
    text = f"@{tg.username} hello from a bot"
    tg.send_user_message(GROUP, OTHER_BOT, text, entities=[tg.mention_entity(text)])
    edited = tg.new_message(ALICE["id"], ALICE, "edited text")
    edited["edit_date"] = int(time.time())
    tg.push_update({"edited_message": edited})
    # A photo above 20 MB is explained, not downloaded; its caption is answered.
    sizes = tg.photo_sizes(b"\xff\xd8big", size=25 * 1024 * 1024)
    tg.send_user_message(ALICE["id"], ALICE, None, extra={"photo": sizes, "caption": "what is this?"})
    await answered(tg, ALICE["id"])
    await bot.settle()
    texts = [m.text for m in tg.bot_messages(ALICE["id"])]
    assert any("20 MB" in t for t in texts)
    assert tg.bot_messages(GROUP) == []
    assert len(fake_gateway.requests) == 1 and "what is this?" in user_prompt(fake_gateway.last.body)
    assert "edited text" not in str(fake_gateway.last.body)
    assert not [c for c in tg.calls_to("getFile") if c.params.get("file_id") == sizes[-1]["file_id"]]
    assert {c["command"] for c in tg.commands} >= {"start", "help", "new", "usage", "style", "copy"}


async def test_allowlist_refuses_politely_once(start_bot, tg, fake_gateway) -> None:
    bot = await start_bot(TELEGRAM_ALLOWED_CHATS=f"{ALICE['id']}")
    tg.send_user_message(BOB["id"], BOB, "hi")
    tg.send_user_message(BOB["id"], BOB, "hello?")
    tg.send_user_message(ALICE["id"], ALICE, "hi")
    await answered(tg, ALICE["id"])
    await bot.settle()
    refusals = tg.bot_messages(BOB["id"])
    assert len(refusals) == 1 and "private" in refusals[0].text
    assert len(fake_gateway.requests) == 1


# ---- groups and topics ---------------------------------------------------------------------
async def test_group_answers_mentions_and_stays_quiet_on_chatter(start_bot, tg, fake_gateway) -> None:
    fake_gateway.script(Answer(text="Tea for every team: *calm in a cup*."))
    bot = await start_bot()
    tg.send_user_message(GROUP, BOB, "we sell green tea to offices")
    await bot.settle()
    assert tg.bot_messages(GROUP) == [] and fake_gateway.requests == []
    text = f"@{tg.username} write a slogan"
    asked = tg.send_user_message(GROUP, CAROL, text, entities=[tg.mention_entity(text)])
    [final] = await answered(tg, GROUP)
    assert final.reply_to == asked["message_id"], "the answer replies to the message that asked"
    assert final.text == "Tea for every team: calm in a cup."
    prompt = user_prompt(fake_gateway.last.body)
    assert "[Bob] we sell green tea to offices" in prompt
    assert "[Carol Lee] write a slogan" in prompt and "@" + tg.username not in prompt
    assert not tg.calls_to("sendMessageDraft"), "no drafts in groups"
    no_limit_broken(tg)


async def test_reply_to_the_bot_and_commands_address_it(start_bot, tg, fake_gateway) -> None:
    bot = await start_bot()
    text = f"@{tg.username} hi"
    tg.send_user_message(GROUP, BOB, text, entities=[tg.mention_entity(text)])
    [first] = await answered(tg, GROUP)
    human = tg.send_user_message(GROUP, CAROL, "just chatting")
    tg.send_user_message(GROUP, BOB, "replying to Carol, not the bot", reply_to=human["message_id"])
    tg.send_user_message(GROUP, CAROL, "make it shorter", reply_to=first.message_id)
    await answered(tg, GROUP, 2)
    assert "make it shorter" in user_prompt(fake_gateway.last.body)
    assert len(fake_gateway.requests) == 2
    tg.send_user_message(GROUP, BOB, "/help@other_bot", entities=[FakeTelegram.command_entity("/help@other_bot")])
    tg.send_user_message(
        GROUP, BOB, f"/help@{tg.username}", entities=[FakeTelegram.command_entity(f"/help@{tg.username}")]
    )
    await bot.settle()
    help_text = [m for m in tg.bot_messages(GROUP) if "/new" in m.text]
    assert len(help_text) == 1 and len(fake_gateway.requests) == 2


async def test_forum_topics_are_separate_shared_conversations(start_bot, tg, fake_gateway) -> None:
    await start_bot()
    t1 = f"@{tg.username} topic one: tea"
    tg.send_user_message(FORUM, BOB, t1, entities=[tg.mention_entity(t1)], thread_id=7)
    [a1] = await answered(tg, FORUM)
    t2 = f"@{tg.username} topic two: coffee"
    tg.send_user_message(FORUM, CAROL, t2, entities=[tg.mention_entity(t2)], thread_id=9)
    await answered(tg, FORUM, 2)
    a2 = tg.bot_messages(FORUM)[-1]
    assert (a1.thread_id, a2.thread_id) == (7, 9)
    prompt = user_prompt(fake_gateway.last.body)
    assert "coffee" in prompt and "tea" not in prompt
    tg.send_user_message(FORUM, CAROL, "and a tagline?", reply_to=a1.message_id, thread_id=7)
    await answered(tg, FORUM, 3)
    assert tg.bot_messages(FORUM)[-1].thread_id == 7
    assert "tea" in user_prompt(fake_gateway.last.body)


async def test_a_group_photo_captioned_with_the_mention_alone_waits_for_the_question(
    start_bot, tg, fake_gateway
) -> None:
    """ "@bot" under a photo addresses it and says nothing more: the question that follows is
    its text (a burst), not a second turn after an answer to "@bot"."""
    fake_gateway.script(Answer(text="A red square.", reasoning=THINK))
    bot = await start_bot()
    buf = BytesIO()
    from PIL import Image

    Image.new("RGB", (32, 32), "red").save(buf, "JPEG")
    caption = f"@{tg.username}"
    tg.send_user_message(
        GROUP,
        BOB,
        None,
        extra={
            "photo": tg.photo_sizes(buf.getvalue()),
            "caption": caption,
            "caption_entities": [tg.mention_entity(caption)],
        },
    )
    question = f"@{tg.username} what is this?"
    tg.send_user_message(GROUP, BOB, question, entities=[tg.mention_entity(question)])
    await answered(tg, GROUP)
    await bot.settle()
    assert len(fake_gateway.requests) == 1, "one turn for the photo and its question"
    body = fake_gateway.last.body
    assert "image_url" in json.dumps(body) and "what is this?" in user_prompt(body)
    assert f"@{tg.username}" not in user_prompt(body).replace(question, "")


async def test_album_of_three_photos_is_one_message(start_bot, tg, fake_gateway) -> None:
    from io import BytesIO

    from PIL import Image

    def jpeg(color: str) -> bytes:
        out = BytesIO()
        Image.new("RGB", (32, 32), color).save(out, "JPEG")
        return out.getvalue()

    bot = await start_bot()
    for i, color in enumerate(("red", "green", "blue")):
        extra = {"photo": tg.photo_sizes(jpeg(color)), "media_group_id": "album-1"}
        if i == 1:
            extra["caption"] = "写一篇种草文案"
        tg.send_user_message(ALICE["id"], ALICE, None, extra=extra)
        # The behaviour under test: an album's items arrive apart, within the gathering window.
        await asyncio.sleep(0.05)
    await answered(tg, ALICE["id"])
    await bot.settle()
    assert len(fake_gateway.requests) == 1
    body = fake_gateway.last.body
    blocks = [
        b for m in body["messages"] if m["role"] == "user" and isinstance(m["content"], list) for b in m["content"]
    ]
    assert sum(1 for b in blocks if b.get("type") == "image_url") == 3
    assert "写一篇种草文案" in user_prompt(body)
    fetched = [c.params["file_id"] for c in tg.calls_to("getFile") if c.ok]
    assert len(fetched) == 3


# ---- buttons ---------------------------------------------------------------------------------
async def test_stop_button_keeps_what_was_written(start_bot, tg, fake_gateway) -> None:
    fake_gateway.script(Answer(text="word " * 400, reasoning=THINK, chunk_size=5, chunk_delay=0.01))
    await start_bot()
    text = f"@{tg.username} write a lot"
    tg.send_user_message(GROUP, BOB, text, entities=[tg.mention_entity(text)])
    streaming = await eventually(lambda: tg.bot_messages(GROUP))
    [stop] = _buttons(streaming[0])
    tg.press_button(GROUP, streaming[0].message_id, CAROL, stop)
    [final] = await answered(tg, GROUP)
    assert final.text.startswith("word") and final.text.endswith("(stopped)")
    assert len(final.text) < len("word " * 400)
    assert any(c.params.get("text") == "Stopping…" for c in tg.calls_to("answerCallbackQuery"))


async def test_regenerate_and_feedback_buttons(start_bot, tg, fake_gateway) -> None:
    fake_gateway.script(Answer(text="first take"), Answer(text="second take"))
    bot = await start_bot()
    text = f"@{tg.username} name our tea"
    asked = tg.send_user_message(GROUP, BOB, text, entities=[tg.mention_entity(text)])
    [first] = await answered(tg, GROUP)
    regen, up, _down = _buttons(first)
    tg.press_button(GROUP, first.message_id, CAROL, up)
    tg.press_button(GROUP, first.message_id, BOB, regen)
    await answered(tg, GROUP, 2)
    second = tg.bot_messages(GROUP)[-1]
    assert second.text == "second take" and second.reply_to == asked["message_id"]
    assert "name our tea" in user_prompt(fake_gateway.last.body)
    assert "first take" not in str(fake_gateway.last.body["messages"])
    turn_id = int(regen.split(":")[1])
    async with bot.service.store.db.read() as conn:
        feedback = (await conn.execute(select(Turn.feedback, Turn.feedback_by).where(Turn.id == turn_id))).one()
    assert tuple(feedback) == (1, str(CAROL["id"])), "Carol's 👍 is stored on the first answer"
    answers = [c.params.get("text") for c in tg.calls_to("answerCallbackQuery")]
    assert answers == ["Thanks for the feedback!", "Writing a new answer…"]


async def test_a_429_on_a_click_s_answer_neither_retries_it_nor_holds_back_the_new_answer(
    start_bot, tg, fake_gateway
) -> None:
    fake_gateway.script(Answer(text="first take"), Answer(text="second take"))
    await start_bot()
    text = f"@{tg.username} name our tea"
    tg.send_user_message(GROUP, BOB, text, entities=[tg.mention_entity(text)])
    [first] = await answered(tg, GROUP)
    regen, _up, _down = _buttons(first)
    tg.inject("answerCallbackQuery", status=429, retry_after=30)
    started = time.monotonic()
    tg.press_button(GROUP, first.message_id, BOB, regen)
    await answered(tg, GROUP, 2)
    assert time.monotonic() - started < 10, "the regenerated answer did not wait out the 429"
    assert tg.bot_messages(GROUP)[-1].text == "second take"
    assert len(tg.calls_to("answerCallbackQuery")) == 1, "a click's answer is not retried"


async def test_copy_variants_get_refinement_buttons(start_bot, tg, fake_gateway) -> None:
    import json

    def variants(title: str, n: int) -> str:
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

    await start_bot()
    tg.send_user_message(GROUP, BOB, "/style xiaohongshu", entities=[FakeTelegram.command_entity("/style")])
    await eventually(lambda: tg.bot_messages(GROUP))
    fake_gateway.script(
        Answer(text=variants("秋天的第一杯", 3), reasoning="写三版"), Answer(text=variants("短版", 1), reasoning="改短")
    )
    text = f"@{tg.username} 帮我们写桂花乌龙的种草笔记"
    tg.send_user_message(GROUP, CAROL, text, entities=[tg.mention_entity(text)])
    [copy] = [m for m in await answered(tg, GROUP) if _buttons(m)]
    assert "秋天的第一杯1" in copy.text and "秋天的第一杯3" in copy.text and '{"variants"' not in copy.text
    buttons = _buttons(copy)
    refine = [b for b in buttons if b.startswith("refine:")]
    assert len(refine) == 3 * 6 and buttons[-3].startswith("regen:")
    shorter_1 = next(b for b in refine if b.endswith(":1:shorter"))
    tg.press_button(GROUP, copy.message_id, BOB, shorter_1)
    await answered(tg, GROUP, 2)
    assert "短版1" in tg.bot_messages(GROUP)[-1].text
    assert "秋天的第一杯1" in str(fake_gateway.last.body["messages"][-1])


# ---- webhook ---------------------------------------------------------------------------------
def _update(tg: FakeTelegram, chat_id: int, user: dict, text: str) -> dict:
    return {"update_id": 5555, "message": tg.new_message(chat_id, user, text)}


async def test_webhook_rejects_a_wrong_secret_and_handles_a_duplicate_once(start_bot, tg, fake_gateway) -> None:
    bot = await start_bot(TELEGRAM_WEBHOOK_URL=WEBHOOK_URL, TELEGRAM_WEBHOOK_SECRET=SECRET)
    assert tg.webhook == {
        "url": WEBHOOK_URL,
        "secret_token": SECRET,
        "allowed_updates": [
            "message",
            "callback_query",
            "my_chat_member",
            "guest_message",
            "stopped_message_generation",
        ],
    }
    assert not tg.calls_to("getUpdates"), "webhook mode does not poll"
    app = create_app(bot.adapter.routes())
    update = _update(tg, ALICE["id"], ALICE, "hello over webhook")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://bot.example.com") as http:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
            r = await http.post("/telegram/webhook", json=update, headers=headers)
            assert r.status_code == 403
        await bot.settle()  # a webhook update is handed in before its 200: nothing is left to wait for
        assert fake_gateway.requests == [] and tg.bot_messages(ALICE["id"]) == []
        # Nothing was stored: the same update with the right secret is handled.
        good = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        assert (await http.post("/telegram/webhook", json=update, headers=good)).status_code == 200
        assert (await http.post("/telegram/webhook", json=update, headers=good)).status_code == 200
        await answered(tg, ALICE["id"])
        await bot.settle()
        assert len(fake_gateway.requests) == 1
        assert len([m for m in tg.bot_messages(ALICE["id"]) if _buttons(m)]) == 1
        # Past the secret it is Telegram's, which would redeliver a refusal for ever: acknowledged.
        assert (await http.post("/telegram/webhook", content=b"not json", headers=good)).status_code == 200
        await bot.settle()
        assert len(fake_gateway.requests) == 1, "and dropped"


async def test_duplicate_update_after_a_restart_is_not_answered_again(start_bot, tg, fake_gateway) -> None:
    bot = await start_bot(TELEGRAM_WEBHOOK_URL=WEBHOOK_URL, TELEGRAM_WEBHOOK_SECRET=SECRET)
    update = _update(tg, ALICE["id"], ALICE, "once only")
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(bot.adapter.routes())), base_url="https://x"
    ) as http:
        await http.post("/telegram/webhook", json=update, headers=headers)
        await answered(tg, ALICE["id"])
    await bot.stop()
    bot.adapter = None
    bot.runtime = None
    again = await start_bot(TELEGRAM_WEBHOOK_URL=WEBHOOK_URL, TELEGRAM_WEBHOOK_SECRET=SECRET)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(again.adapter.routes())), base_url="https://x"
    ) as http:
        assert (await http.post("/telegram/webhook", json=update, headers=headers)).status_code == 200
    await again.settle()
    assert len(fake_gateway.requests) == 1


# ---- order -----------------------------------------------------------------------------------
async def test_a_photo_that_downloads_slowly_is_answered_before_the_text_sent_after_it(
    start_bot, tg, fake_gateway
) -> None:
    from PIL import Image

    buf = BytesIO()
    Image.new("RGB", (16, 16), (200, 40, 40)).save(buf, "JPEG")
    tg.download_delay = 0.8  # the photo's download takes far longer than the text's handling
    fake_gateway.script(Answer(text="a red square", reasoning=THINK), Answer(text="you're welcome", reasoning=THINK))
    await start_bot()
    tg.send_user_message(
        ALICE["id"], ALICE, None, extra={"photo": tg.photo_sizes(buf.getvalue()), "caption": "what is in this photo?"}
    )
    tg.send_user_message(ALICE["id"], ALICE, "thanks in advance")
    await answered(tg, ALICE["id"], 2, timeout=30)
    first, second = (r.body for r in fake_gateway.requests)
    asked_first = [m for m in first["messages"] if m["role"] == "user"]
    assert "what is in this photo?" in json.dumps(asked_first[-1]) and "image_url" in json.dumps(asked_first[-1])
    assert "thanks in advance" not in json.dumps(first["messages"]), "the later text did not overtake the photo"
    assert user_prompt(second).endswith("thanks in advance")
    assert [m.text for m in tg.bot_messages(ALICE["id"])] == ["a red square", "you're welcome"]


# ---- removed from a group --------------------------------------------------------------------
async def test_removed_from_a_group_mid_answer_the_answer_stops_and_nothing_more_is_sent(
    start_bot, tg, fake_gateway
) -> None:
    fake_gateway.script(
        Answer(text="A long answer that keeps going. " * 80, reasoning=THINK, chunk_size=8, chunk_delay=0.02)
    )
    bot = await start_bot()
    text = f"@{tg.username} write a lot"
    tg.send_user_message(GROUP, BOB, text, entities=[tg.mention_entity(text)])
    await eventually(lambda: tg.bot_messages(GROUP))
    tg.kick_bot(GROUP, by=CAROL)
    await bot.settle()  # the answer ended, and the bot's removal was handled
    turn = await _turn_row(bot)
    assert turn.status == "interrupted" and "no longer takes" in (turn.error or "")
    # my_chat_member is recorded: the conversation is marked as left, not only the 403 seen.
    assert await _left_at(bot) is not None
    refused = [c for c in tg.calls if c.status == 403]
    assert len(refused) <= 2, "one refused write ends the answer: no retries into a chat we left"
    assert len(fake_gateway.requests) == 1
    calls_after = len(tg.calls)
    # A restart must not repair an answer in a chat the bot was removed from.
    await bot.service.drain()
    again = await start_bot()
    await again.settle()  # its startup repairs included
    assert [c for c in tg.calls[calls_after:] if c.params.get("chat_id") == GROUP] == []


async def _left_at(bot):
    async with bot.service.store.db.read() as conn:
        return (await conn.execute(select(Conversation.left_at).where(Conversation.chat == str(GROUP)))).scalar()


async def _turn_row(bot):
    async with bot.service.store.db.read() as conn:
        return (await conn.execute(select(Turn.status, Turn.error))).first()


# ---- restart ---------------------------------------------------------------------------------
@pytest.mark.parametrize("chat_id", [GROUP, ALICE["id"]], ids=["edited-message", "draft"])
async def test_restart_mid_answer_rewrites_the_half_written_answer(start_bot, tg, fake_gateway, chat_id) -> None:
    fake_gateway.script(Answer(text="partial answer " * 100, reasoning=THINK, chunk_size=10, chunk_delay=0.01))
    first = await start_bot()
    user = BOB if chat_id == GROUP else ALICE
    asked = tg.new_message(chat_id, user, "long please")
    msg = IncomingMessage(
        key=ConversationKey("telegram", str(tg.bot_id), str(chat_id), ""),
        author=Author(str(user["id"]), user["first_name"]),
        text="long please",
        message_id=str(asked["message_id"]),
        group=chat_id == GROUP,
    )
    surface = first.adapter.surface_for(msg.key, reply_to=msg.message_id)
    # The process dies mid-answer: the handling task is cancelled, nothing is finalised.
    task = asyncio.create_task(first.service.handle(msg, surface))
    if chat_id == GROUP:
        half = (await eventually(lambda: [m for m in tg.bot_messages(chat_id) if m.edits >= 2]))[0]
        assert "restarted" not in half.text
    else:
        await eventually(lambda: len([c for c in tg.calls_to("sendMessageDraft") if c.ok]) >= 3)
        assert tg.bot_messages(chat_id) == [], "a draft is not a message yet"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await first.runtime.close()
    first.runtime = None
    await first.adapter.stop()
    first.adapter = None

    await start_bot()
    repaired = await eventually(lambda: [m for m in tg.bot_messages(chat_id) if "restarted" in m.text])
    assert len(tg.bot_messages(chat_id)) == 1
    if chat_id == GROUP:
        assert repaired[0].message_id == half.message_id, "the half-written message is rewritten"
    assert repaired[0].text.startswith("partial answer partial")
    assert [b for b in _buttons(repaired[0]) if b.startswith("regen:")], "the Stop button is gone"
    no_limit_broken(tg)


def test_no_token_no_adapter() -> None:
    assert not platform_settings("telegram").configured()
    assert platform_settings("telegram", TELEGRAM_BOT_TOKEN="1:x").configured()


# ---- real values -----------------------------------------------------------------------------
@pytest.mark.realtime
async def test_real_limits_two_groups_and_a_private_chat_draw_no_429(make_settings, fake_gateway) -> None:
    """Telegram's own windows (1/s per chat, 20/min per group, drafts 20/5 s) and the
    adapter's real pacing: three answers streaming at once break none of them."""
    async with FakeTelegram() as fake:
        fake.add_chat(ALICE["id"], "private", user=ALICE)
        fake.add_chat(GROUP, "supergroup")
        fake.add_chat(FORUM, "supergroup", is_forum=True)
        text = "A steady stream of words for the real pacing test. " * 12
        fake_gateway.script(*(Answer(text=text, reasoning=THINK, chunk_size=12, chunk_delay=0.1) for _ in range(3)))
        values = dict(TELEGRAM_BOT_TOKEN=fake.token, TELEGRAM_API_URL=fake.api_url, TELEGRAM_POLL_TIMEOUT=1)
        runtime = await build_runtime(make_settings(), migrate=False)
        adapter = connect(runtime, "telegram", **values)
        await adapter.start()
        try:
            fake.send_user_message(ALICE["id"], ALICE, "go")
            for chat, thread in ((GROUP, None), (FORUM, 3)):
                ask = f"@{fake.username} go"
                fake.send_user_message(chat, BOB, ask, entities=[fake.mention_entity(ask)], thread_id=thread)
            for chat in (ALICE["id"], GROUP, FORUM):
                [final] = await answered(fake, chat, timeout=40)
                assert final.text == text.strip()
            assert len(fake.calls_to("sendMessageDraft", ALICE["id"])) >= 3
            assert fake.bot_messages(GROUP)[0].edits >= 2
            no_limit_broken(fake)
        finally:
            await adapter.stop()
            await runtime.close()
