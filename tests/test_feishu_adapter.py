"""The Feishu adapter end to end: its own long-connection client and lark-oapi's typed Open API
calls against the fake Feishu (``tests/fakes/feishu_*``: real limits, error codes, the SDK's
frames), the real ChatService and store, and the fake gateway.

Every Feishu window and interval is shrunk by ``SCALE`` on both sides (``PLATFORM_TIME_SCALE``
and the fake's ``time_scale``), so a second of Feishu's is 50 ms here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest
from sqlalchemy import select

from bot.core import texts
from bot.platform.controls import Press
from bot.process.runtime import build_runtime
from bot.store.models import Conversation, Turn
from tests.fakes.feishu_api import FakeFeishu, FeishuLimits
from tests.fakes.feishu_cards import StreamingRules, controls
from tests.fakes.gateway import Answer, last_user_text
from tests.feishu_harness import (
    PNG,
    SCALE,
    THOUGHT,
    Harness,
    _close,
    _harness,
    answer_text,
    presses,
    value_of,
)
from tests.platforms import connect
from tests.polling import eventually


def everything_sent(fake: FakeFeishu) -> str:
    """Every body the bot sent to Feishu, as JSON text."""
    return "\n".join(json.dumps(c.body, ensure_ascii=False) for c in fake.calls if c.body)


# ---- answers ------------------------------------------------------------------------------


async def test_a_private_message_streams_into_a_card_that_is_closed(feishu: Harness) -> None:
    fake, gateway = feishu.fake, feishu.gateway
    answer = "桂花乌龙上新：一口回甘，冷泡热泡都好喝。" * 8
    gateway.script(Answer(text=answer, reasoning=THOUGHT * 3, chunk_size=6, chunk_delay=0.01))
    alice = fake.user("Alice")
    chat = fake.p2p_chat(alice)
    _, event = fake.events.text(chat, alice, "写一段新品文案")
    delivery = await feishu.send(event)
    assert len(delivery.attempts) == 1 and delivery.ack_latency < 0.15  # before Feishu's 3 s (scaled)
    await feishu.settle()

    [message] = fake.bot_messages(chat.chat_id)
    card = message.card
    assert card is not None and answer_text(message) == answer
    assert fake.cards_left_generating() == []  # streaming mode closed: no "生成中…" left behind
    # While the model thought, the card said so; the first words replaced it on the same card.
    assert card.updates[0].op == "create" and "thinking" in json.dumps(fake.calls_to("cardkit.card.create")[0].body)
    pushes = card.content_updates
    assert pushes and all(u.code == 0 for u in card.updates)
    sequences = [u.sequence for u in card.updates if u.sequence is not None]
    assert sequences == sorted(set(sequences))  # strictly increasing
    assert all(answer.startswith(u.content or "") for u in pushes)  # the whole text so far, each time
    final = card.updates[-1]
    assert final.op == "update" and card.data["config"]["streaming_mode"] is False
    assert card.data["config"]["summary"]["content"].startswith("桂花乌龙上新")
    kinds = [Press.decode(p).kind for p in presses(message)]
    assert kinds == ["regen", "fb", "fb"]  # Stop is gone; Regenerate and feedback are there
    assert "Let me weigh" not in everything_sent(fake)  # reasoning is never shown
    assert fake.rate_limited == []
    # A private chat is answered plainly, not as a quoted reply.
    assert message.parent_id is None and fake.calls_to("im.message.reply") == []


async def test_a_group_mention_is_answered_as_a_reply_with_names_kept(feishu: Harness) -> None:
    fake, gateway = feishu.fake, feishu.gateway
    gateway.default = lambda body: Answer(text=f"echo: {last_user_text(body)}", reasoning=THOUGHT)
    alice, bob = fake.user("Alice"), fake.user("Bob")
    group = fake.group_chat("市场部")
    asked, event = fake.events.text(group, alice, "@_user_1 帮 @_user_2 想个标题", mentions=[fake.bot, bob])
    await feishu.send(event)
    await feishu.settle()
    [answer] = fake.bot_messages(group.chat_id)
    # The bot's placeholder is gone, Bob's is his name; the group message carries its author.
    assert answer_text(answer) == "echo: [Alice] 帮 @Bob 想个标题"
    assert answer.parent_id == asked.message_id and answer.thread_id is None  # quoted, in the main chat

    # Chatter that does not @ the bot (an app allowed to read all group messages) is context only.
    _, chatter = fake.events.text(group, bob, "我觉得第二个好")
    await feishu.send(chatter)
    await feishu.settle()
    assert len(gateway.requests) == 1 and len(fake.bot_messages(group.chat_id)) == 1
    _, again = fake.events.text(group, bob, "@_user_1 你觉得呢", mentions=[fake.bot])
    await feishu.send(again)
    await feishu.settle()
    assert "我觉得第二个好" in json.dumps(gateway.last.body["messages"], ensure_ascii=False)


async def test_topic_groups_and_threads_are_answered_in_their_thread(feishu: Harness) -> None:
    fake, gateway = feishu.fake, feishu.gateway
    gateway.default = lambda body: Answer(text=f"echo: {last_user_text(body)}", reasoning=THOUGHT)
    alice = fake.user("Alice")
    topics = fake.group_chat("选题会", topic=True)
    root, event = fake.events.text(topics, alice, "@_user_1 第一个话题", mentions=[fake.bot])
    await feishu.send(event)
    await feishu.settle()
    [answer] = fake.bot_messages(topics.chat_id)
    assert answer.thread_id == root.thread_id and answer.root_id == root.message_id

    follow, event = fake.events.text(topics, alice, "@_user_1 接着说", mentions=[fake.bot], parent=root)
    await feishu.send(event)
    await feishu.settle()
    second = fake.bot_messages(topics.chat_id)[-1]
    assert second.thread_id == root.thread_id  # still in the topic
    history = json.dumps(gateway.last.body["messages"], ensure_ascii=False)
    assert "第一个话题" in history and "接着说" in history  # one conversation per topic

    # In an ordinary group, a reply in a thread is answered in that thread, apart from the main chat.
    group = fake.group_chat("市场部")
    start, event = fake.events.text(group, alice, "@_user_1 主聊天", mentions=[fake.bot])
    await feishu.send(event)
    await feishu.settle()
    inside, event = fake.events.text(group, alice, "@_user_1 话题里", mentions=[fake.bot], parent=start, in_thread=True)
    await feishu.send(event)
    await feishu.settle()
    threaded = fake.bot_messages(group.chat_id)[-1]
    assert threaded.thread_id == inside.thread_id and threaded.root_id == start.message_id
    assert "主聊天" not in last_user_text(gateway.last.body)
    [call] = [c for c in fake.calls_to("im.message.reply") if c.path.endswith(f"{inside.message_id}/reply")]
    assert call.body["reply_in_thread"] is True


async def test_images_and_documents_reach_the_model_and_the_rest_is_answered_politely(feishu: Harness) -> None:
    fake, gateway = feishu.fake, feishu.gateway
    gateway.default = lambda body: Answer(text="看到了", reasoning=THOUGHT)
    alice = fake.user("Alice")
    chat = fake.p2p_chat(alice)
    _, event = fake.events.post(chat, alice, ["这张图配什么文案？"], title="新品", images=[PNG])
    await feishu.send(event)
    await feishu.settle()
    content = gateway.last.body["messages"][-1]["content"]
    assert any(block.get("type") == "image_url" for block in content)
    assert "这张图配什么文案" in last_user_text(gateway.last.body) and "新品" in last_user_text(gateway.last.body)

    brief = "产品：桂花乌龙\n卖点：冷泡三分钟出香\n".encode()
    _, event = fake.events.file(chat, alice, brief, "brief.txt", content_type="text/plain")
    await feishu.send(event)
    await feishu.settle()
    assert "冷泡三分钟出香" in json.dumps(gateway.last.body["messages"], ensure_ascii=False)
    assert len(fake.calls_to("im.message_resource.get")) == 2

    asked = len(gateway.requests)
    for _, event in (
        fake.events.sticker(chat, alice),
        fake.events.audio(chat, alice),
        fake.events.merge_forward(chat, alice),
        fake.events.file(chat, alice, b"MZ\x90", "setup.exe"),
    ):
        await feishu.send(event)
    await feishu.settle()
    assert len(gateway.requests) == asked  # none of them reached the model
    notes = feishu.answers(chat)[-4:]
    assert sorted(n.split(".")[0] for n in notes) == [
        "I can't handle a sticker",
        "I can't handle a voice message",
        "I can't handle merged forwarded messages",
        "I can't read the file “setup",
    ]
    assert len(fake.calls_to("im.message_resource.get")) == 2  # nothing fetched for them


async def test_an_event_pushed_again_is_answered_once(feishu: Harness) -> None:
    fake, gateway = feishu.fake, feishu.gateway
    alice = fake.user("Alice")
    chat = fake.p2p_chat(alice)
    _, event = fake.events.text(chat, alice, "只回答一次")
    await feishu.send(event)
    await feishu.send(event)  # the same event again (no ack came in time, a reconnect)
    again = json.loads(json.dumps(event))
    again["header"]["event_id"] = "another-event-id"  # the same message under another event id
    await feishu.send(again)
    await feishu.settle()
    assert len(gateway.requests) == 1 and len(fake.bot_messages(chat.chat_id)) == 1


async def test_events_older_than_thirty_minutes_are_dropped(feishu: Harness, caplog) -> None:
    caplog.set_level(logging.INFO, logger="adapters.feishu.adapter")
    fake = feishu.fake
    alice = fake.user("Alice")
    chat = fake.p2p_chat(alice)
    _, event = fake.events.text(chat, alice, "半小时前的消息")
    event["header"]["create_time"] = str(int((time.time() - 31 * 60) * 1000))
    await feishu.send(event)  # acknowledged (or Feishu pushes it again), not answered
    await feishu.settle()
    assert fake.bot_messages() == [] and feishu.gateway.requests == []
    assert any("older than 30 minutes" in r.getMessage() for r in caplog.records)


async def test_the_bot_added_to_and_removed_from_a_chat_is_recorded(feishu: Harness) -> None:
    fake = feishu.fake
    alice = fake.user("Alice")
    group = fake.group_chat("市场部")
    _, event = fake.events.text(group, alice, "@_user_1 你好", mentions=[fake.bot])
    await feishu.send(event)
    await feishu.settle()
    await feishu.send(fake.events.bot_deleted(group, alice))
    await feishu.settle()
    async with feishu.runtime.db.read() as conn:
        left = (await conn.execute(select(Conversation.left_at).where(Conversation.chat == group.chat_id))).all()
    assert left and all(row.left_at is not None for row in left)
    await feishu.send(fake.events.bot_added(group, alice))
    await feishu.settle()
    async with feishu.runtime.db.read() as conn:
        left = (await conn.execute(select(Conversation.left_at).where(Conversation.chat == group.chat_id))).all()
    assert all(row.left_at is None for row in left)


# ---- card limits ----------------------------------------------------------------------------


async def test_a_long_answer_continues_on_a_new_card_before_the_size_limit(
    make_settings, fake_gateway, fake: FakeFeishu
) -> None:
    h = await _harness(make_settings, fake_gateway, fake, FEISHU_CARD_TEXT_BYTES=2_000)
    try:
        answer = "".join(f"第{i}段：桂花乌龙，冷泡三分钟出香，办公室下午茶的新选择。\n\n" for i in range(60))
        fake_gateway.script(Answer(text=answer, reasoning=THOUGHT, chunk_size=40))
        alice = fake.user("Alice")
        chat = fake.p2p_chat(alice)
        await h.send(fake.events.text(chat, alice, "写长一点")[1])
        await h.settle()
        messages = fake.bot_messages(chat.chat_id)
        assert len(messages) >= 3 and messages[0].card is not None  # streamed, then continued
        assert "".join(answer_text(m) + "\n\n" for m in messages).split() == answer.split()  # nothing lost
        assert all(len(json.dumps(answer_text(m), ensure_ascii=False).encode()) <= 2_000 for m in messages)
        assert fake.cards_left_generating() == [] and not any(c.code for c in fake.calls)
        assert presses(messages[-1]) and not any(presses(m) for m in messages[:-1])  # buttons on the last card
    finally:
        await _close(h)


async def test_a_card_rolls_over_before_feishus_ten_minute_streaming_limit(
    make_settings, fake_gateway, fake: FakeFeishu
) -> None:
    # Feishu's 10 minutes shrunk to 2.4 s, and the adapter's limit (540 s of 600) with it.
    fake.streaming = StreamingRules(ttl=2.4)
    h = await _harness(make_settings, fake_gateway, fake, FEISHU_STREAM_MAX_AGE=540 * 2.4 / (600 * SCALE))
    try:
        answer = " ".join(f"word{i}" for i in range(400))
        fake_gateway.script(Answer(text=answer, reasoning=THOUGHT, chunk_size=10, chunk_delay=0.02))
        alice = fake.user("Alice")
        chat = fake.p2p_chat(alice)
        await h.send(fake.events.text(chat, alice, "a long one")[1])
        await h.settle()
        messages = fake.bot_messages(chat.chat_id)
        assert len(messages) >= 2  # ~4 s of streaming: more than one card's window
        assert " ".join(answer_text(m) for m in messages).split() == answer.split()
        ages = [u.at - m.card.created_at for m in messages if m.card for u in m.card.updates if u.op == "content"]
        assert ages and max(ages) < 2.4  # every push inside its card's streaming window
        assert [c for c in fake.calls if c.code] == []  # no 200850 / 300309: rolled over in time
        assert fake.cards_left_generating() == []
    finally:
        await _close(h)


async def test_a_card_whose_streaming_feishu_ended_is_settled_once_and_the_answer_goes_on(
    make_settings, fake_gateway
) -> None:
    async with FakeFeishu(time_scale=SCALE, streaming_idle_ttl=4) as fake:  # idle 0.2 s: closed by Feishu
        h = await _harness(make_settings, fake_gateway, fake)
        try:
            gate = fake_gateway.hold()
            first, rest = "第一部分，先写到这里。", "第二部分，模型想了很久之后接着写完。"
            fake_gateway.script(
                Answer(chunks=[f"<think>{THOUGHT}</think>\n\n", first, rest], pause_after=2, wait_for=gate)
            )
            alice = fake.user("Alice")
            chat = fake.p2p_chat(alice)
            await h.send(fake.events.text(chat, alice, "慢慢写")[1])
            await eventually(lambda: first in "".join(h.answers(chat)))
            card = fake.bot_messages(chat.chat_id)[0].card
            await eventually(lambda: (card.expire(time.monotonic()), card.closed_by)[1] == "idle")
            fake_gateway.release()
            await h.settle()
            assert "".join(h.answers(chat)) == first + rest  # nothing lost, nothing twice
            refused = [u for u in card.updates if u.code]
            assert [u.code for u in refused] == [200850]  # one refusal: never pushed again
            assert not any(u.op == "content" and u.at > refused[0].at for u in card.updates)
            assert fake.cards_left_generating() == []  # the ended card was settled, not left "生成中"
            assert len(fake.bot_messages(chat.chat_id)) == 2
        finally:
            await _close(h)


async def test_where_cardkit_is_refused_the_answer_is_a_card_message_patched_in_place(feishu: Harness) -> None:
    fake, gateway = feishu.fake, feishu.gateway
    fake.cardkit_granted = False
    answer = "没有 CardKit 权限时，回答写在一张卡片消息里，原地更新。" * 6
    gateway.script(
        Answer(text=answer, reasoning=THOUGHT, chunk_size=8, chunk_delay=0.01),
        Answer(text="第二个回答", reasoning=THOUGHT),
    )
    alice = fake.user("Alice")
    chat = fake.p2p_chat(alice)
    await feishu.send(fake.events.text(chat, alice, "写一段")[1])
    await feishu.settle()
    [message] = fake.bot_messages(chat.chat_id)
    assert message.card is None and answer_text(message) == answer
    assert fake.calls_to("im.message.patch") and fake.cards == {}
    assert [Press.decode(p).kind for p in presses(message)] == ["regen", "fb", "fb"]
    await feishu.send(fake.events.text(chat, alice, "再来")[1])
    await feishu.settle()
    assert len(fake.calls_to("cardkit.card.create")) == 1  # asked once per app, then remembered
    assert answer_text(fake.bot_messages(chat.chat_id)[-1]) == "第二个回答"


async def test_a_card_left_streaming_by_a_dead_process_is_finished_by_the_next(feishu: Harness) -> None:
    """What a restart's repair does: rewrite the card a dead process left, whose sequence it
    never saw, and turn its streaming off."""
    fake = feishu.fake
    alice = fake.user("Alice")
    chat = fake.p2p_chat(alice)
    feishu.gateway.script(Answer(text="写到一半", reasoning=THOUGHT))
    await feishu.send(fake.events.text(chat, alice, "写")[1])
    await feishu.settle()
    [message] = fake.bot_messages(chat.chat_id)
    card = message.card
    from adapters.feishu.surface import TICKS, encode_ref
    from bot.platform import ConversationKey, MessageRef, Write

    ours = feishu.adapter.outlet.cards.pop(message.message_id)  # a fresh process knows only its ref
    # The dead process's pushes nobody here remembers: as many as the card's budget allows
    # (ten a second, a burst of ten) since the card was made.
    await asyncio.sleep(0.3)
    card.last_sequence = int((time.time() - ours.created) * TICKS / SCALE) + 10
    card.streaming, card.closed_by = False, "timeout"  # and Feishu's 10 minutes ran out
    ref = encode_ref(ours)
    surface = feishu.adapter.surface_for(ConversationKey("feishu", fake.tenant_key, chat.chat_id))
    await surface.edit(MessageRef(ref), "写到一半\n\n" + texts.RESTART_MARKER, Write(1, final=True))
    assert answer_text(message).endswith(texts.RESTART_MARKER)
    assert fake.cards_left_generating() == [] and [u.code for u in card.updates if u.code] == []


# ---- limits as budgets ----------------------------------------------------------------------


async def test_a_429_waits_for_the_reset_feishu_names(make_settings, fake_gateway) -> None:
    # Feishu allows this app fewer calls than documented: the 429's reset header is what counts.
    async with FakeFeishu(time_scale=SCALE, limits=FeishuLimits(api_per_second=1)) as fake:
        h = await _harness(make_settings, fake_gateway, fake)
        try:
            answer = "桂花乌龙，一口回甘。" * 40
            fake_gateway.script(Answer(text=answer, reasoning=THOUGHT, chunk_size=4, chunk_delay=0.003))
            alice = fake.user("Alice")
            chat = fake.p2p_chat(alice)
            await h.send(fake.events.text(chat, alice, "写")[1])
            await h.settle()
            assert h.answers(chat) == [answer]
            refused = [c for c in fake.calls if c.status == 429]
            assert refused, "the fake's tighter limit was never reached: the test tests nothing"
            for call in refused:
                assert call.code == 99991400 and call.reset is not None
                after = next((c for c in fake.calls_to(call.api) if c.at > call.at), None)
                # Nothing more to that API until the reset Feishu named has passed.
                assert after is None or after.at - call.at >= call.reset * 0.9, (call.reset, after.at - call.at)
            assert fake.cards_left_generating() == []
        finally:
            await _close(h)


async def test_twenty_group_chats_answered_at_once_earn_no_429(make_settings, fake_gateway, fake: FakeFeishu) -> None:
    h = await _harness(make_settings, fake_gateway, fake)
    try:
        fake_gateway.default = lambda body: Answer(
            text=f"{last_user_text(body)}：" + "好文案，" * 40, reasoning=THOUGHT, chunk_size=4, chunk_delay=0.002
        )
        groups = [fake.group_chat(f"团队{i}") for i in range(20)]
        members = [fake.user(f"member{i}") for i in range(20)]
        events = [
            fake.events.text(g, m, f"@_user_1 第{i}组", mentions=[fake.bot])[1]
            for i, (g, m) in enumerate(zip(groups, members))
        ]
        await asyncio.gather(*(h.send(e) for e in events))
        await h.settle(60)
        for i, group in enumerate(groups):
            assert h.answers(group) == [f"[member{i}] 第{i}组：" + "好文案，" * 40]
        assert fake.rate_limited == []  # no 429 (99991400) and no 230020
        assert fake.cards_left_generating() == []
    finally:
        await _close(h)


async def test_a_chats_own_limit_230020_holds_that_chat_back(make_settings, fake_gateway) -> None:
    async with FakeFeishu(time_scale=SCALE, limits=FeishuLimits(chat_per_second=1)) as fake:
        h = await _harness(make_settings, fake_gateway, fake)
        try:
            alice = fake.user("Alice")
            chat = fake.p2p_chat(alice)
            for _ in range(3):  # three stickers: three notices at once in one chat
                await h.send(fake.events.sticker(chat, alice)[1])
            await h.settle()
            assert len(h.answers(chat)) == 3
            refused = [c for c in fake.calls if c.code == 230020]
            assert refused
            sends = [c for c in fake.calls if c.api in ("im.message.create", "im.message.reply")]
            for call in refused:  # sends already on their way aside, the chat waited its second
                early = [c for c in sends if call.at + 0.01 < c.at < call.at + SCALE * 0.9]
                assert early == [], [(c.at - call.at, c.code) for c in early]
        finally:
            await _close(h)


# ---- controls -------------------------------------------------------------------------------


async def test_buttons_stop_regenerate_and_feedback_answer_with_a_toast(feishu: Harness) -> None:
    fake, gateway = feishu.fake, feishu.gateway
    alice = fake.user("Alice")
    group = fake.group_chat("市场部")
    gate = gateway.hold()
    gateway.script(
        Answer(chunks=[f"<think>{THOUGHT}</think>\n\n", *["慢慢写一段很长的回答。"] * 30], pause_after=8, wait_for=gate)
    )
    asked, event = fake.events.text(group, alice, "@_user_1 写长文", mentions=[fake.bot])
    await feishu.send(event)
    card_message = await eventually(
        lambda: next((m for m in fake.bot_messages(group.chat_id) if answer_text(m) and presses(m)), None)
    )
    [stop] = presses(card_message)
    assert Press.decode(stop).kind == "stop"
    delivery = await feishu.send(fake.events.card_action(card_message, alice, value_of(card_message, stop)))
    assert delivery.response == {"toast": {"type": "info", "content": "Stopping…"}}
    await feishu.settle()
    gateway.release()
    assert answer_text(card_message).endswith(texts.STOPPED)
    async with feishu.runtime.db.read() as conn:
        assert [row.status for row in (await conn.execute(select(Turn.status))).all()] == ["stopped"]

    regen, up, _ = presses(card_message)
    gateway.script(Answer(text="重新写的回答", reasoning=THOUGHT))
    delivery = await feishu.send(fake.events.card_action(card_message, alice, value_of(card_message, regen)))
    await feishu.settle()
    assert delivery.response == {"toast": {"type": "info", "content": "Writing a new answer…"}}
    newest = fake.bot_messages(group.chat_id)[-1]
    assert answer_text(newest) == "重新写的回答" and newest.parent_id == asked.message_id  # answers the question
    assert "写长文" in last_user_text(gateway.last.body)

    delivery = await feishu.send(fake.events.card_action(card_message, alice, value_of(card_message, up)))
    assert delivery.response == {"toast": {"type": "info", "content": texts.FEEDBACK_UP}}
    again = await feishu.send(fake.events.card_action(card_message, alice, {"p": "nonsense"}))
    assert again.response == {"toast": {"type": "info", "content": texts.STALE_CONTROL}}


async def test_copy_variants_come_as_a_card_with_a_select_per_variant(feishu: Harness) -> None:
    fake, gateway = feishu.fake, feishu.gateway
    alice = fake.user("Alice")
    group = fake.group_chat("市场部")
    variants = [
        {
            "title": f"秋天的第一杯{i}",
            "body": f"第{i}版：桂花乌龙真的香🌼，冷泡热泡都好喝。",
            "hashtags": ["桂花乌龙", "好茶推荐", "下午茶"],
        }
        for i in (1, 2, 3)
    ]
    gateway.script(Answer(text=json.dumps({"variants": variants}, ensure_ascii=False), reasoning="写三版"))
    await feishu.send(
        fake.events.text(group, alice, "@_user_1 /copy xiaohongshu 桂花乌龙种草笔记", mentions=[fake.bot])[1]
    )
    await feishu.settle()
    copy = fake.bot_messages(group.chat_id)[-1]
    shown = answer_text(copy)
    assert all(f"秋天的第一杯{i}" in shown for i in (1, 2, 3)) and '"variants"' not in everything_sent(fake)
    selects = [c for c in controls(copy.card_json) if c["tag"] == "select_static"]
    assert len(selects) == 3 and all(len(s["options"]) >= 3 for s in selects)
    option = next(o for o in selects[1]["options"] if Press.decode(o).args[:1] == ("2",))
    short = {"title": "短版", "body": "短版正文🌼，桂花乌龙真的香。", "hashtags": ["桂花乌龙", "好茶推荐", "下午茶"]}
    gateway.script(Answer(text=json.dumps({"variants": [short]}, ensure_ascii=False), reasoning="改"))
    delivery = await feishu.send(
        fake.events.card_action(copy, alice, selects[1]["value"], tag="select_static", option=option)
    )
    await feishu.settle()
    assert delivery.response and delivery.response["toast"]["content"]
    assert "秋天的第一杯2" in last_user_text(gateway.last.body)  # the chosen variant, for the model
    assert "短版" in answer_text(fake.bot_messages(group.chat_id)[-1])


# ---- transports -----------------------------------------------------------------------------

ENCRYPT_KEY = "fake-encrypt-key-for-tests"


async def _webhook(make_settings, fake_gateway, fake: FakeFeishu, **overrides: object):
    import uvicorn

    from bot.process.webapp import create_app
    from tests.processes import free_port

    h = await _harness(
        make_settings,
        fake_gateway,
        fake,
        FEISHU_CONNECTION="webhook",
        FEISHU_VERIFICATION_TOKEN=fake.verification_token,
        **overrides,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(h.adapter.routes()), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    await eventually(lambda: server.started)
    return h, f"http://127.0.0.1:{port}/feishu/events", server, serving


async def test_the_http_callback_checks_then_hands_in_and_answers_at_once(make_settings, fake_gateway) -> None:
    async with FakeFeishu(time_scale=SCALE, encrypt_key=ENCRYPT_KEY) as fake:
        h, url, server, serving = await _webhook(make_settings, fake_gateway, fake, FEISHU_ENCRYPT_KEY=ENCRYPT_KEY)
        try:
            assert fake.ws.connections == []  # no long connection in webhook mode
            challenge = fake.events.url_verification()
            verified = await fake.deliver_http(url, challenge)
            assert verified.status == 200 and verified.response_json() == {"challenge": challenge["challenge"]}

            alice = fake.user("Alice")
            chat = fake.p2p_chat(alice)
            _, event = fake.events.text(chat, alice, "加密的消息")
            delivered = await fake.deliver_http(url, event)
            assert delivered.status == 200 and delivered.latency < 1.0
            await h.settle()
            assert h.answers(chat) == ["echo: 加密的消息"]

            forged = await fake.deliver_http(url, fake.events.text(chat, alice, "伪造")[1], signature_key="guess")
            stolen = await fake.deliver_http(
                url, fake.events.text(chat, alice, "偷来的")[1], verification_token="stolen"
            )
            plain = await fake.deliver_http(url, fake.events.text(chat, alice, "明文")[1], encrypt_key="")
            assert (forged.status, stolen.status, plain.status) == (401, 401, 400)  # refused, never a 500
            async with __import__("aiohttp").ClientSession() as session:
                async with session.post(url, data=b"x" * (2 * 1024 * 1024)) as resp:
                    assert resp.status == 413
                async with session.post(url, data=b"{not json") as resp:
                    assert resp.status == 400
            await h.settle()
            assert len(fake_gateway.requests) == 1  # nothing refused reached the model

            # A button over the callback: the toast comes back in the response.
            [answer] = fake.bot_messages(chat.chat_id)
            up = next(p for p in presses(answer) if Press.decode(p).args == ("1",))
            clicked = await fake.deliver_http(url, fake.events.card_action(answer, alice, value_of(answer, up)))
            assert clicked.status == 200 and clicked.response_json() == {
                "toast": {"type": "info", "content": texts.FEEDBACK_UP}
            }
        finally:
            server.should_exit = True
            await serving
            await _close(h)


async def test_a_plain_callback_is_checked_by_its_token(make_settings, fake_gateway, fake: FakeFeishu) -> None:
    h, url, server, serving = await _webhook(make_settings, fake_gateway, fake)
    try:
        alice = fake.user("Alice")
        chat = fake.p2p_chat(alice)
        assert (await fake.deliver_http(url, fake.events.text(chat, alice, "你好")[1])).status == 200
        assert (
            await fake.deliver_http(url, fake.events.text(chat, alice, "冒充")[1], verification_token="guess")
        ).status == 401
        assert (await fake.deliver_http(url, fake.events.url_verification(token="guess"))).status == 401
        await h.settle()
        assert h.answers(chat) == ["echo: 你好"]
    finally:
        server.should_exit = True
        await serving
        await _close(h)


async def test_the_long_connection_comes_back_after_a_drop_and_readyz_says_so(feishu: Harness) -> None:
    fake, adapter = feishu.fake, feishu.adapter
    fake.ws.refuse_connections(0.5)
    await fake.ws.drop_connections()
    await eventually(lambda: not adapter.health().connected)
    assert "reconnecting" in adapter.health().detail or "lost" in adapter.health().detail
    await fake.ws.wait_connected(within=10)
    await eventually(lambda: adapter.health().connected)
    alice = fake.user("Alice")
    chat = fake.p2p_chat(alice)
    await feishu.send(fake.events.text(chat, alice, "还在吗")[1])
    await feishu.settle()
    assert feishu.answers(chat) == ["echo: 还在吗"]
    await adapter.pause()  # shutdown: the socket closes, so Feishu sends the next events elsewhere
    await eventually(lambda: fake.ws.live == [])


async def test_refused_credentials_keep_the_process_up_and_unready(
    make_settings, fake_gateway, fake: FakeFeishu
) -> None:
    values = dict(
        FEISHU_APP_ID=fake.app_id,
        FEISHU_APP_SECRET="rotated-in-the-console",
        FEISHU_DOMAIN=fake.base_url,
        PLATFORM_TIME_SCALE=SCALE,
    )
    runtime = await build_runtime(make_settings(**values), migrate=False)
    adapter = connect(runtime, "feishu", **values)
    await adapter.start()  # does not raise: the process serves its other platforms and /readyz
    try:
        await eventually(lambda: "refused" in adapter.health().detail)
        assert not adapter.health().connected and fake.ws.connections == []
    finally:
        await adapter.stop()
        await runtime.close()


async def test_tools_at_work_show_on_the_card_one_line_each_and_are_gone_at_the_end(feishu: Harness) -> None:
    from bot.tools import Tool
    from tests.fakes.gateway import FakeToolCall

    fake, gateway = feishu.fake, feishu.gateway
    looked_up = asyncio.Event()

    async def market_size() -> str:
        await looked_up.wait()
        return "12 亿元"

    feishu.runtime.service.tools.add(
        Tool(
            "market_size",
            "Looks up the tea market's size.",
            {"type": "object", "properties": {}},
            market_size,
            label="market size",
        )
    )
    gateway.script(
        Answer(text="先查一下。", reasoning="look it up", tool_calls=[FakeToolCall("market_size", {})]),
        Answer(text="市场规模约 12 亿元。", reasoning="done"),
    )
    alice = fake.user("Alice")
    chat = fake.p2p_chat(alice)
    await feishu.send(fake.events.text(chat, alice, "茶饮市场多大？")[1])
    message = await eventually(lambda: next(iter(fake.bot_messages(chat.chat_id)), None))
    await eventually(lambda: "🔧 market size ⏳" in message.text)  # the card shows the tool at work
    looked_up.set()
    await feishu.settle()
    assert any("🔧 market size ✓" in u.text for u in message.card.updates)  # and that it ended well
    assert answer_text(message) == "先查一下。\n\n市场规模约 12 亿元。" and "🔧" not in message.text  # gone at the end
    assert fake.cards_left_generating() == [] and [u.code for u in message.card.updates if u.code] == []


async def test_a_tool_called_before_any_text_opens_the_card(feishu: Harness) -> None:
    from bot.tools import Tool
    from tests.fakes.gateway import FakeToolCall

    fake, gateway = feishu.fake, feishu.gateway
    looked_up = asyncio.Event()

    async def market_size() -> str:
        await looked_up.wait()
        return "12 亿元"

    feishu.runtime.service.tools.add(
        Tool(
            "market_size",
            "Looks up the tea market's size.",
            {"type": "object", "properties": {}},
            market_size,
            label="market size",
        )
    )
    gateway.script(
        Answer(text="", reasoning="look it up", tool_calls=[FakeToolCall("market_size", {})]),
        Answer(text="约 12 亿元。", reasoning="done"),
    )
    alice = fake.user("Alice")
    group = fake.group_chat("市场部")
    await feishu.send(fake.events.text(group, alice, "@_user_1 茶饮市场多大？", mentions=[fake.bot])[1])
    message = await eventually(
        lambda: next((m for m in fake.bot_messages(group.chat_id) if "🔧 market size ⏳" in m.text), None)
    )
    assert Press.decode(presses(message)[0]).kind == "stop"  # stoppable while the tool runs
    looked_up.set()
    await feishu.settle()
    assert [answer_text(m) for m in fake.bot_messages(group.chat_id)] == ["约 12 亿元。"]  # one card, reused
    assert fake.cards_left_generating() == []


async def test_group_threads_give_each_mention_a_thread_of_its_own(
    make_settings, fake_gateway, fake: FakeFeishu
) -> None:
    h = await _harness(make_settings, fake_gateway, fake, FEISHU_GROUP_THREADS=True)
    try:
        fake_gateway.default = lambda body: Answer(text=f"echo: {last_user_text(body)}", reasoning=THOUGHT)
        alice = fake.user("Alice")
        group = fake.group_chat("市场部")
        asked, event = fake.events.text(group, alice, "@_user_1 第一件事", mentions=[fake.bot])
        await h.send(event)
        await h.settle()
        [answer] = fake.bot_messages(group.chat_id)
        assert answer.thread_id and answer.root_id == asked.message_id  # the mention opened a thread
        _, event = fake.events.text(group, alice, "@_user_1 接着第一件事", mentions=[fake.bot], parent=answer)
        await h.send(event)
        _, other = fake.events.text(group, alice, "@_user_1 另一件事", mentions=[fake.bot])
        await h.send(other)
        await h.settle()
        asked_texts = [json.dumps(r.body["messages"], ensure_ascii=False) for r in fake_gateway.requests]
        assert "第一件事" in asked_texts[1] and "第一件事" not in asked_texts[2]  # a thread is a conversation
        assert fake.bot_messages(group.chat_id)[-1].thread_id not in (None, answer.thread_id)
    finally:
        await _close(h)


def test_settings_domain_allowlists_and_webhook_needs_a_token() -> None:
    from adapters.feishu.settings import FeishuSettings
    from bot.config import SettingsError
    from bot.platform import Gate

    def load(**values: object) -> FeishuSettings:
        settings = FeishuSettings.load(_env_file=None, app_id="cli_1", app_secret="s", **values)
        assert isinstance(settings, FeishuSettings)
        return settings

    assert load().base_url == "https://open.feishu.cn" and load(domain="Lark").base_url == "https://open.larksuite.com"
    assert load(domain="http://127.0.0.1:9/").base_url == "http://127.0.0.1:9"
    with pytest.raises(SettingsError):
        load(domain="open.feishu.cn")
    with pytest.raises(SettingsError) as missing:
        load(connection="webhook")
    assert "FEISHU_VERIFICATION_TOKEN" in str(missing.value)
    assert not FeishuSettings.load(_env_file=None).configured()
    rules = load(allowed_tenants="t1", allowed_chats="oc_team", allowed_users="ou_boss")
    assert rules.admits("t2", "oc_team", "ou_x").gate is Gate.SILENT
    assert rules.admits("t1", "oc_team", "ou_x").gate is Gate.OPEN  # everyone in a listed chat
    assert rules.admits("t1", "oc_dm", "ou_boss").gate is Gate.OPEN  # a listed person anywhere
    assert rules.admits("t1", "oc_dm", "ou_x").gate is Gate.CLOSED
    assert load().admits("any", "oc_any", "ou_any").gate is Gate.OPEN


async def test_two_processes_share_the_events_and_answer_each_once(
    make_settings, fake_gateway, fake: FakeFeishu
) -> None:
    """Two `bot run`s of one app (here: two runtimes on one database): Feishu gives each event to
    one of the app's connections, and an event pushed again to the other is still answered once."""
    first = await _harness(make_settings, fake_gateway, fake)
    second = await _harness(make_settings, fake_gateway, fake)
    try:
        await fake.ws.wait_connected(2)
        users = [fake.user(f"user{i}") for i in range(4)]
        events = [fake.events.text(fake.p2p_chat(u), u, f"问题{i}")[1] for i, u in enumerate(users)]
        deliveries = [await first.send(e) for e in events]
        assert len({d.attempts[0].conn_id for d in deliveries}) == 2  # both processes took events
        again = await first.send(events[1])  # pushed again, and to the other process this time
        assert again.attempts[0].conn_id != deliveries[1].attempts[0].conn_id
        await first.settle()
        await second.settle()
        for i, user in enumerate(users):
            assert first.answers(fake.p2p_chat(user)) == [f"echo: 问题{i}"]
        assert len(fake_gateway.requests) == 4
    finally:
        await _close(second)
        await _close(first)


def test_message_shapes_read_as_text() -> None:
    from adapters.feishu.normalise import Identity, received

    me = Identity("ou_bot", "Copy Helper")
    mentions = [
        {"key": "@_user_1", "id": {"open_id": "ou_bot"}, "name": "Copy Helper"},
        *({"key": f"@_user_{i}", "id": {"open_id": f"ou_{i}"}, "name": f"P{i}"} for i in range(2, 11)),
    ]

    def event(kind: str, content: object, *, chat_type: str = "group", **message: object) -> dict:
        return {
            "sender": {"sender_id": {"open_id": "ou_alice"}, "sender_type": "user"},
            "message": {
                "message_id": "om_1",
                "chat_id": "oc_1",
                "chat_type": chat_type,
                "message_type": kind,
                "content": json.dumps(content, ensure_ascii=False),
                "mentions": mentions,
                **message,
            },
        }

    text = received(event("text", {"text": "@_user_1 问 @_user_10 和 @_user_2"}), "t", me)
    assert text is not None and text.text == "问 @P10 和 @P2" and text.addressed
    bare = received(event("text", {"text": "@_user_1"}), "t", me)
    assert bare is not None and bare.text == "@Copy Helper"  # a bare @ is still a question
    post = received(
        event(
            "post",
            {
                "zh_cn": {
                    "title": "标题",
                    "content": [
                        [
                            {"tag": "at", "user_id": "@_user_1"},
                            {"tag": "text", "text": " 看看"},
                            {"tag": "a", "text": "官网", "href": "https://x.cn"},
                        ],
                        [{"tag": "code_block", "language": "python", "text": "print(1)"}],
                        [{"tag": "img", "image_key": "img_1"}],
                    ],
                }
            },
        ),
        "t",
        me,
    )
    assert post is not None and post.text.startswith("**标题**\n看看[官网](https://x.cn)")
    assert "```python\nprint(1)\n```" in post.text and [f.key for f in post.files] == ["img_1"]
    chatter = received(event("text", {"text": "随便聊聊"}, mentions=[]), "t", me)
    assert chatter is not None and not chatter.addressed  # a group message that does not @ the bot
    topic = received(event("text", {"text": "@_user_1 话题"}, thread_id="omt_1", root_id="om_root"), "t", me)
    assert topic is not None and (topic.thread, topic.in_thread) == ("om_root", True)
    own = received(
        {**event("text", {"text": "hi"}), "sender": {"sender_id": {"open_id": "ou_bot"}, "sender_type": "app"}}, "t", me
    )
    assert own is None
