"""Telegram 2026: a user's stop on a streamed draft (Bot API 10.3) and guest mode (10.0),
end to end: the real python-telegram-bot Application against the fake Bot API over HTTP,
the real ChatService and store, and the fake gateway (harness in tests/telegram_harness.py).
"""

from __future__ import annotations

import httpx

from bot.core.turns import TurnState
from bot.process.webapp import create_app
from bot.usage.access import NOT_ALLOWED_TEXT
from tests.fakes.gateway import Answer
from tests.fakes.telegram_api import FakeTelegram
from tests.polling import eventually
from tests.telegram_harness import ALICE, BOB, GROUP, THINK, _buttons, answered, no_limit_broken, user_prompt

LONG = "word " * 3000  # 3,000 chunks 10 ms apart: half a minute unless the request is cancelled
GUEST_CHAT = -100900  # a group the bot never joined
WEBHOOK_URL = "https://bot.example.com/telegram/webhook"
SECRET = "s3cret_token-XYZ"


def ok_drafts(tg: FakeTelegram, chat_id: int) -> list:
    return [c for c in tg.calls_to("sendMessageDraft", chat_id) if c.ok]


def turn_of(message) -> int:
    return int(next(b for b in _buttons(message) if b.startswith("regen:")).split(":")[1])


# ---- a user's stop on a draft --------------------------------------------------------
async def test_a_stop_on_the_draft_ends_the_turn_like_the_stop_button(start_bot, tg, fake_gateway) -> None:
    fake_gateway.script(Answer(text=LONG, reasoning=THINK, chunk_size=5, chunk_delay=0.01))
    bot = await start_bot()
    tg.send_user_message(ALICE["id"], ALICE, "write a lot")
    [draft, *_] = await eventually(lambda: [c for c in ok_drafts(tg, ALICE["id"]) if c.params.get("text")])
    assert str(draft.params.get("can_stop")).lower() == "true", "drafts offer the user a stop button"
    assert str(draft.params.get("keep_on_stop")).lower() == "true", "what was written stays when stopped"
    polls = [c for c in tg.calls_to("getUpdates") if c.ok]
    assert {"guest_message", "stopped_message_generation"} <= set(polls[-1].params["allowed_updates"])

    tg.stop_draft(ALICE["id"])
    shown = tg.drafts[(ALICE["id"], draft.params["draft_id"])]
    await eventually(lambda: fake_gateway.active == 0, timeout=5)  # the model's stream was abandoned
    [final] = await answered(tg, ALICE["id"])
    assert final.text.startswith(shown.strip()), "the final message holds the text shown so far"
    assert final.text.endswith("(stopped)") and len(final.text) < len(LONG.strip())
    turn_id = turn_of(final)
    await bot.service.wait_turn(turn_id)
    turn = await bot.service.store.turn(turn_id)
    assert turn is not None and turn.state is TurnState.STOPPED, "stored as the Stop button stores it"
    assert len(fake_gateway.requests) == 1 and len(tg.bot_messages(ALICE["id"])) == 1
    no_limit_broken(tg)


async def test_a_stop_for_a_draft_whose_turn_ended_changes_nothing(start_bot, tg, fake_gateway) -> None:
    first = "A short first answer that streams as a draft, then ends."
    second = "The second answer is written to the end. " * 8
    fake_gateway.script(
        Answer(text=first, reasoning=THINK, chunk_size=6, chunk_delay=0.02),
        Answer(text=second, reasoning=THINK, chunk_size=6, chunk_delay=0.02),
    )
    bot = await start_bot()
    tg.send_user_message(ALICE["id"], ALICE, "first")
    await answered(tg, ALICE["id"])
    old_draft = ok_drafts(tg, ALICE["id"])[-1].params["draft_id"]
    tg.send_user_message(ALICE["id"], ALICE, "second")
    await eventually(lambda: [c for c in ok_drafts(tg, ALICE["id"]) if c.params["draft_id"] != old_draft])
    tg.stop_draft(ALICE["id"], old_draft)  # tapped on the first answer's draft, long gone
    tg.push_update({"stopped_message_generation": {"chat": tg.chats[ALICE["id"]], "draft_id": 7}})  # not ours
    tg.push_update({"stopped_message_generation": {"chat": "nonsense"}})
    tg.push_update({"stopped_message_generation": None})
    messages = await answered(tg, ALICE["id"], 2)
    assert [m.text for m in messages] == [first, second.strip()], "the running answer was not stopped"
    await bot.settle()
    turn = await bot.service.store.turn(turn_of(messages[1]))
    assert turn is not None and turn.state is TurnState.DONE


async def test_a_telegram_that_refuses_can_stop_still_streams_drafts(start_bot, tg, fake_gateway) -> None:
    tg.can_stop_supported = False
    answer = "Drafts stream without the stop button. " * 6
    fake_gateway.script(Answer(text=answer, reasoning=THINK, chunk_size=10, chunk_delay=0.03), Answer(text="again"))
    await start_bot()
    tg.send_user_message(ALICE["id"], ALICE, "hello")
    [final] = await answered(tg, ALICE["id"])
    assert final.text == answer.strip()
    assert len(ok_drafts(tg, ALICE["id"])) >= 2, "the answer still streamed as drafts"
    tg.send_user_message(ALICE["id"], ALICE, "and again")
    await answered(tg, ALICE["id"], 2)
    refused = [c for c in tg.calls_to("sendMessageDraft") if not c.ok]
    assert len(refused) == 1, "the stop button is asked for once, then drafts go without it"
    assert all("can_stop" not in c.params for c in ok_drafts(tg, ALICE["id"]))
    no_limit_broken(tg)


# ---- guest mode ------------------------------------------------------------------------
def guest_chat(tg: FakeTelegram) -> int:
    tg.add_chat(GUEST_CHAT, "supergroup", title="Book club")
    return GUEST_CHAT


async def test_a_guest_query_is_answered_once_with_only_the_query(start_bot, tg, fake_gateway) -> None:
    chat = guest_chat(tg)
    fake_gateway.script(
        Answer(text="Private chat answer."),
        Answer(text="First **guest** answer."),
        Answer(text="Second guest answer, *formatted*.", chunk_size=4, chunk_delay=0.01),
    )
    bot = await start_bot()
    tg.send_user_message(ALICE["id"], ALICE, "remember: my favourite colour is teal")
    await answered(tg, ALICE["id"])
    text = f"@{tg.username} which novel should we read first?"
    first = tg.guest_query(chat, ALICE, text, entities=[tg.mention_entity(text)])
    await eventually(lambda: first["guest_query_id"] in tg.guest_answers)
    second = tg.guest_query(chat, ALICE, f"@{tg.username} and who wrote it?")
    answer = await eventually(lambda: tg.guest_answers.get(second["guest_query_id"]))
    await bot.settle()

    assert answer.chat_id == chat and answer.text == "Second guest answer, formatted."
    assert any(e["type"] == "italic" for e in answer.entities), "the answer is formatted"
    assert answer.reply_markup is None, "no buttons on an inline message"
    assert tg.guest_answers[first["guest_query_id"]].text == "First guest answer."
    assert len(tg.calls_to("answerGuestQuery")) == 2, "exactly one answer per query"
    for method in ("sendMessage", "editMessageText", "sendMessageDraft", "sendChatAction"):
        assert not tg.calls_to(method, chat), f"nothing but the answer reaches the chat ({method})"
    body = fake_gateway.last.body
    assert [m["role"] for m in body["messages"] if m["role"] != "system"] == ["user"], "no history"
    prompt = user_prompt(body)
    assert "who wrote it" in prompt and "novel" not in prompt and "teal" not in prompt
    assert f"@{tg.username}" not in prompt


async def test_a_guest_query_the_allowlist_refuses_gets_the_refusal(start_bot, tg, fake_gateway) -> None:
    chat = guest_chat(tg)
    fake_gateway.script(Answer(text="Answered in the allowlisted group."))
    await start_bot(TELEGRAM_ALLOWED_CHATS=f"{GROUP}")
    refused = tg.guest_query(chat, BOB, f"@{tg.username} summarise this chat")
    answer = await eventually(lambda: tg.guest_answers.get(refused["guest_query_id"]))
    assert answer.text == NOT_ALLOWED_TEXT and fake_gateway.served == 0
    allowed = tg.guest_query(GROUP, BOB, f"@{tg.username} hello")
    answer = await eventually(lambda: tg.guest_answers.get(allowed["guest_query_id"]))
    assert answer.text == "Answered in the allowlisted group."


async def test_malformed_guest_updates_are_acknowledged_and_dropped(start_bot, tg, fake_gateway) -> None:
    chat = guest_chat(tg)
    fake_gateway.script(Answer(text="Still answering."))
    bot = await start_bot()
    no_query = tg.new_message(chat, ALICE, f"@{tg.username} no query id")
    no_sender = {
        k: v
        for k, v in tg.new_message(chat, ALICE, "no sender", extra={"guest_query_id": "gq-x"}).items()
        if k != "from"
    }
    for bad in (no_query, no_sender, "not a message", {"message_id": 1}):
        tg.push_update({"guest_message": bad})
    good = tg.guest_query(chat, ALICE, f"@{tg.username} are you there?")
    answer = await eventually(lambda: tg.guest_answers.get(good["guest_query_id"]))
    await bot.settle()
    assert answer.text == "Still answering."
    assert fake_gateway.served == 1 and len(tg.calls_to("answerGuestQuery")) == 1


async def test_guest_queries_count_against_the_asker_s_quota(start_bot, tg, fake_gateway) -> None:
    chat = guest_chat(tg)
    fake_gateway.script(Answer(text="A costly guest answer.", prompt_tokens=900, completion_tokens=200))
    await start_bot(BOT_QUOTA_USER_DAILY="1000 tokens")
    first = tg.guest_query(chat, ALICE, f"@{tg.username} tell me everything")
    answer = await eventually(lambda: tg.guest_answers.get(first["guest_query_id"]))
    assert answer.text == "A costly guest answer."
    second = tg.guest_query(chat, ALICE, f"@{tg.username} and more")
    refusal = await eventually(lambda: tg.guest_answers.get(second["guest_query_id"]))
    assert "daily limit of 1,000 tokens" in refusal.text, "the guest answer's usage was counted"
    tg.send_user_message(ALICE["id"], ALICE, "hello in private")
    [reply] = await eventually(lambda: tg.bot_messages(ALICE["id"]))
    assert "daily limit of 1,000 tokens" in reply.text, "one quota, whichever chat the usage came from"
    assert fake_gateway.served == 1


async def test_over_a_webhook_guest_and_stop_updates_are_acknowledged_and_handled_once(
    start_bot, tg, fake_gateway
) -> None:
    chat = guest_chat(tg)
    fake_gateway.script(Answer(text="Webhook guest answer."))
    bot = await start_bot(TELEGRAM_WEBHOOK_URL=WEBHOOK_URL, TELEGRAM_WEBHOOK_SECRET=SECRET)
    assert {"guest_message", "stopped_message_generation"} <= set(tg.webhook["allowed_updates"])
    good = tg.numbered({"guest_message": tg.guest_message(chat, ALICE, f"@{tg.username} hi")})
    bad = [
        tg.numbered({"guest_message": {"chat": "nonsense"}}),
        tg.numbered({"stopped_message_generation": {"draft_id": "x"}}),
        tg.numbered({"stopped_message_generation": {"chat": tg.chats[ALICE["id"]], "draft_id": 99_999}}),
    ]
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(bot.adapter.routes())), base_url="https://bot.example.com"
    ) as http:
        for update in (good, good, *bad):  # Telegram redelivers what it did not see acknowledged
            assert (await http.post("/telegram/webhook", json=update, headers=headers)).status_code == 200
    await bot.settle()
    [answer] = tg.guest_answers.values()
    assert answer.text == "Webhook guest answer."
    assert len(tg.calls_to("answerGuestQuery")) == 1 and fake_gateway.served == 1


async def test_a_structured_answer_streaming_as_a_rich_draft_keeps_the_stop_button(start_bot, tg, fake_gateway) -> None:
    tg.rich_messages = True
    long_plan = "## Plan\n\n" + "\n".join(f"- step {i}: brew the tea for {i} minutes" for i in range(1, 3000))
    fake_gateway.script(Answer(text=long_plan, reasoning=THINK, chunk_size=40, chunk_delay=0.01))
    bot = await start_bot()
    tg.send_user_message(ALICE["id"], ALICE, "plan it all")
    [draft, *_] = await eventually(lambda: [c for c in tg.calls_to("sendRichMessageDraft", ALICE["id"]) if c.ok])
    assert str(draft.params.get("can_stop")).lower() == "true", "a rich draft offers the stop button too"
    tg.stop_draft(ALICE["id"], draft.params["draft_id"])
    await eventually(lambda: fake_gateway.active == 0, timeout=5)
    [final] = await answered(tg, ALICE["id"])
    turn_id = turn_of(final)
    await bot.service.wait_turn(turn_id)
    turn = await bot.service.store.turn(turn_id)
    assert turn is not None and turn.state is TurnState.STOPPED
