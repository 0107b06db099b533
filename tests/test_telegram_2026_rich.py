"""Telegram's 2026 messages (issue 20): rich messages (Bot API 10.1) for answers with structure
and for copy variants, and ephemeral messages (10.2/10.3) for notices meant for one person in a
group, each falling back to today's rendering where Telegram refuses it. The real
python-telegram-bot Application against the fake Bot API (harness in tests/telegram_harness.py).
"""

from __future__ import annotations

import logging

from bot.copywriting.refine import ACTIONS
from tests.fakes.gateway import Answer
from tests.fakes.telegram_api import FakeTelegram, StoredMessage
from tests.polling import eventually
from tests.telegram_harness import ALICE, BOB, GROUP, THINK, _buttons, answered, no_limit_broken
from tests.test_telegram_copywriting import copy_answer, set_style, xhs

TABLE = (
    "Here are the plans:\n\n"
    "| Plan | Price | Seats |\n|---|---|---|\n| Starter | $9 | 1 |\n| Team | $29 | 10 |\n\n"
    "Pick **Team** if you share the bot."
)


def ask_group(tg: FakeTelegram, user: dict, text: str) -> dict:
    said = f"@{tg.username} {text}"
    return tg.send_user_message(GROUP, user, said, entities=[tg.mention_entity(said)])


def command(tg: FakeTelegram, chat_id: int, user: dict, text: str) -> dict:
    return tg.send_user_message(chat_id, user, text, entities=[FakeTelegram.command_entity(text)])


def rich_tries(tg: FakeTelegram) -> list:
    """Every call that asked Telegram for a rich message or a rich draft."""
    return [
        c
        for c in tg.calls
        if c.method in ("sendRichMessage", "sendRichMessageDraft")
        or (c.method == "editMessageText" and "rich_message" in c.params)
    ]


def ephemeral_tries(tg: FakeTelegram) -> list:
    return [c for c in tg.calls if "ephemeral_message_parameters" in c.params]


# ---- rich messages ---------------------------------------------------------------------------
async def test_a_table_answer_arrives_as_one_rich_message_and_streams_plain(start_bot, tg, fake_gateway) -> None:
    tg.rich_messages = True
    fake_gateway.script(Answer(text=TABLE, reasoning=THINK, chunk_size=10, chunk_delay=0.02))
    await start_bot()
    asked = ask_group(tg, BOB, "compare the plans")

    [final] = await answered(tg, GROUP)
    assert final.rich == {"markdown": TABLE}, "the whole answer, table and all, is the rich message's content"
    assert "| Team | $29 | 10 |" in final.text
    assert final.reply_to == asked["message_id"] and _buttons(final)[0].startswith("regen:")
    # While it streamed, the group saw plain text: never half-written Markdown to parse.
    streamed = [
        c for c in tg.calls_to("editMessageText", GROUP) + tg.calls_to("sendMessage", GROUP) if "text" in c.params
    ]
    assert streamed and all("entities" not in c.params and "parse_mode" not in c.params for c in streamed)
    no_limit_broken(tg)


async def test_a_plain_short_answer_stays_a_normal_message(start_bot, tg, fake_gateway) -> None:
    tg.rich_messages = True
    fake_gateway.script(Answer(text="Tea that tastes like **autumn**.", reasoning=THINK))
    await start_bot()
    ask_group(tg, BOB, "a slogan please")

    [final] = await answered(tg, GROUP)
    assert final.rich is None and final.text == "Tea that tastes like autumn."
    assert [e["type"] for e in final.entities] == ["bold"]
    assert rich_tries(tg) == []


async def test_a_bot_without_rich_messages_formats_as_before_and_stops_asking(
    start_bot, tg, fake_gateway, caplog
) -> None:
    # tg.rich_messages stays False: a Bot API server before 10.1.
    fake_gateway.script(Answer(text=TABLE, reasoning=THINK), Answer(text=TABLE.replace("$29", "$39"), reasoning=THINK))
    bot = await start_bot()
    with caplog.at_level(logging.INFO, logger="adapters.telegram"):
        ask_group(tg, BOB, "compare the plans")
        await answered(tg, GROUP)
        ask_group(tg, ALICE, "and next year?")
        first, second = await answered(tg, GROUP, 2)
        await bot.settle()

    for message, price in ((first, "$29"), (second, "$39")):
        assert message.rich is None and "Starter" in message.text and price in message.text
        assert message.entities, "today's formatted message"
    assert len(rich_tries(tg)) == 1, "asked once; the bot remembers Telegram's answer"
    said = [r.getMessage() for r in caplog.records if "rich messages are not available" in r.getMessage()]
    assert len(said) == 1


async def test_a_structured_private_answer_streams_a_rich_draft_and_ends_rich(start_bot, tg, fake_gateway) -> None:
    tg.rich_messages = True
    answer = "## Plan\n\n" + "\n".join(f"- step {i}: brew the tea for {i} minutes" for i in range(1, 30))
    fake_gateway.script(Answer(text=answer, reasoning=THINK, chunk_size=40, chunk_delay=0.02))
    await start_bot()
    tg.send_user_message(ALICE["id"], ALICE, "how do I brew it?")

    [final] = await answered(tg, ALICE["id"])
    assert final.rich == {"markdown": answer}
    drafts = [c for c in tg.calls_to("sendRichMessageDraft", ALICE["id"]) if c.ok]
    assert drafts, "the structured answer streamed as a rich draft"


async def test_without_rich_drafts_a_private_answer_streams_plain_drafts(start_bot, tg, fake_gateway) -> None:
    answer = "## Plan\n\n" + "\n".join(f"- step {i}: brew the tea" for i in range(1, 20))
    fake_gateway.script(Answer(text=answer, reasoning=THINK, chunk_size=30, chunk_delay=0.02))
    await start_bot()
    tg.send_user_message(ALICE["id"], ALICE, "how do I brew it?")

    [final] = await answered(tg, ALICE["id"])
    assert final.rich is None and "step 19: brew the tea" in final.text and final.entities
    assert len([c for c in tg.calls_to("sendMessageDraft", ALICE["id"]) if c.ok]) >= 2, "plain drafts as before"
    assert len(rich_tries(tg)) == 1


async def test_a_long_structured_private_answer_is_one_rich_message_not_pages_of_4096(
    start_bot, tg, fake_gateway
) -> None:
    tg.rich_messages = True
    fake_gateway.script(Answer(text="# Warm-up\n\n- one\n- two", reasoning=THINK))
    await start_bot()
    tg.send_user_message(ALICE["id"], ALICE, "warm up")
    await answered(tg, ALICE["id"])

    sections = [f"## Part {i}\n\n" + f"Oolong number {i} is rolled, roasted and rested. " * 20 for i in range(1, 16)]
    long_answer = "\n\n".join(s.strip() for s in sections)
    assert 12_000 < len(long_answer) < 20_000
    fake_gateway.script(Answer(text=long_answer, reasoning=THINK, chunk_size=800, chunk_delay=0.01))
    tg.send_user_message(ALICE["id"], ALICE, "tell me everything about oolong")
    messages = await answered(tg, ALICE["id"], 2)

    [final] = [m for m in messages if m.rich is not None and "Part 15" in m.text]
    assert final.rich == {"markdown": long_answer}, "one rich message up to its own limit, not pages of 4096"
    assert len(tg.bot_messages(ALICE["id"])) == 2


async def test_an_answer_over_a_rich_message_s_limit_continues_in_a_second_one(start_bot, tg, fake_gateway) -> None:
    tg.rich_messages = True
    fake_gateway.script(Answer(text="# Warm-up\n\n- one\n- two", reasoning=THINK))
    await start_bot()
    tg.send_user_message(ALICE["id"], ALICE, "warm up")
    await answered(tg, ALICE["id"])

    sections = [f"## Part {i}\n\n" + f"Tieguanyin batch {i} is rolled, roasted and rested. " * 12 for i in range(1, 71)]
    huge = "\n\n".join(s.strip() for s in sections)
    assert 40_000 < len(huge) < 60_000
    fake_gateway.script(Answer(text=huge, reasoning=THINK, chunk_size=4000, chunk_delay=0.01))
    tg.send_user_message(ALICE["id"], ALICE, "all the batches")
    await answered(tg, ALICE["id"], 2)

    pages = [m for m in tg.bot_messages(ALICE["id"])[1:] if m.rich is not None]
    assert len(pages) == 2 and all(len(m.text) <= 32_768 for m in pages), [len(m.text) for m in pages]
    assert "Part 1\n" in pages[0].text and "Part 70\n" in pages[1].text
    assert "".join(m.text for m in pages).replace("\n", "") == huge.replace("\n", "")


async def test_copy_variants_arrive_as_one_rich_message_with_their_buttons(start_bot, tg, fake_gateway) -> None:
    tg.rich_messages = True
    await start_bot()
    await set_style(tg, GROUP, ALICE)
    fake_gateway.script(Answer(text=xhs("秋天的第一杯"), reasoning="写三版", chunk_size=40))
    ask_group(tg, BOB, "帮我们写桂花乌龙的种草笔记")
    await answered(tg, GROUP)

    copy: StoredMessage = copy_answer(tg, GROUP)
    assert copy.rich is not None
    for i in (1, 2, 3):
        assert f"方案 {i}" in copy.rich["markdown"] and f"秋天的第一杯{i}" in copy.rich["markdown"]
    assert "写三版" not in copy.text
    buttons = _buttons(copy)
    turn = buttons[-3].split(":")[1]
    assert buttons[:-3] == [f"refine:{turn}:{n}:{a}" for n in (1, 2, 3) for a in ACTIONS]
    assert buttons[-3:] == [f"regen:{turn}", f"fb:{turn}:1", f"fb:{turn}:-1"]
    with_variants = [m for m in tg.bot_messages(GROUP) if "秋天的第一杯1" in m.text or "秋天的第一杯3" in m.text]
    assert with_variants == [copy], "the variants are one message"


# ---- ephemeral notices -----------------------------------------------------------------------
async def test_a_quota_refusal_in_a_group_is_seen_only_by_the_asker(start_bot, tg, fake_gateway) -> None:
    tg.ephemeral = "yes"
    fake_gateway.script(Answer(text="first answer", reasoning=THINK, prompt_tokens=900, completion_tokens=200))
    bot = await start_bot(BOT_QUOTA_USER_DAILY="1000 tokens")
    ask_group(tg, BOB, "one")
    await answered(tg, GROUP)
    seen_before = [m.text for m in tg.bot_messages(GROUP)]
    asked = ask_group(tg, BOB, "two")

    [refusal] = await eventually(lambda: tg.ephemerals_for(GROUP, BOB["id"]))
    assert "daily limit of 1,000 tokens" in refusal.text and refusal.reply_to == asked["message_id"]
    await bot.settle()
    assert [m.text for m in tg.bot_messages(GROUP)] == seen_before, "nobody else sees the refusal"
    assert fake_gateway.served == 1


async def test_a_quota_refusal_in_a_private_chat_is_a_normal_message(start_bot, tg, fake_gateway) -> None:
    tg.ephemeral = "yes"
    fake_gateway.script(Answer(text="first answer", reasoning=THINK, prompt_tokens=900, completion_tokens=200))
    await start_bot(BOT_QUOTA_USER_DAILY="1000 tokens", TELEGRAM_DRAFTS=False)
    tg.send_user_message(BOB["id"], BOB, "one")
    await answered(tg, BOB["id"])
    tg.send_user_message(BOB["id"], BOB, "two")

    messages = await eventually(lambda: tg.bot_messages(BOB["id"])[1:])
    assert "daily limit of 1,000 tokens" in messages[0].text
    assert tg.ephemerals == [] and ephemeral_tries(tg) == []


async def test_a_bot_refused_ephemeral_messages_replies_in_the_chat_and_stops_asking(
    start_bot, tg, fake_gateway
) -> None:
    tg.ephemeral = "refused"
    bot = await start_bot()
    first = command(tg, GROUP, BOB, f"/help@{tg.username}")
    [help_reply] = await eventually(lambda: tg.bot_messages(GROUP))
    assert "/help" in help_reply.text and help_reply.reply_to == first["message_id"]
    second = command(tg, GROUP, ALICE, f"/usage@{tg.username}")
    replies = await eventually(lambda: tg.bot_messages(GROUP)[1:])
    await bot.settle()
    assert replies[0].reply_to == second["message_id"]
    assert tg.ephemerals == [] and len(ephemeral_tries(tg)) == 1, "asked once, then normal replies"


async def test_a_server_that_ignores_ephemeral_parameters_is_not_asked_again(
    start_bot, tg, fake_gateway, caplog
) -> None:
    # tg.ephemeral stays "ignored": a server before Bot API 10.2 sends such a message to everyone.
    bot = await start_bot()
    with caplog.at_level(logging.INFO, logger="adapters.telegram"):
        command(tg, GROUP, BOB, f"/help@{tg.username}")
        await eventually(lambda: tg.bot_messages(GROUP))
        command(tg, GROUP, ALICE, f"/help@{tg.username}")
        await eventually(lambda: tg.bot_messages(GROUP)[1:])
        await bot.settle()
    assert len(ephemeral_tries(tg)) == 1
    assert len([r for r in caplog.records if "ephemeral messages are not available" in r.getMessage()]) == 1


async def test_a_help_reply_in_a_group_goes_to_its_asker_alone(start_bot, tg, fake_gateway) -> None:
    tg.ephemeral = "yes"
    bot = await start_bot()
    command(tg, GROUP, BOB, f"/help@{tg.username}")
    [reply] = await eventually(lambda: tg.ephemerals_for(GROUP, BOB["id"]))
    await bot.settle()
    assert "/help" in reply.text and tg.bot_messages(GROUP) == []
