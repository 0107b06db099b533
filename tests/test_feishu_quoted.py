"""On Feishu, `@bot /check` sent as a reply checks the message it replies to. Feishu's event names
only the parent's id, so the adapter reads the parent back (``GET im/v1/messages/{id}``) — for a
command that works on a message, and for nothing else. The real adapter, core and store against
the fake Open Platform."""

from __future__ import annotations

import logging

from bot.brands.brand_extension import CHECK_USAGE
from tests.fakes.feishu_api import FakeFeishu
from tests.fakes.feishu_model import FakeChat
from tests.fakes.gateway import Answer, last_user_text
from tests.feishu_harness import THOUGHT, Harness, _close, _harness, answer_text


def said(h: Harness, chat: FakeChat) -> list[str]:
    """Everything of the bot's that the people in ``chat`` read, in order."""
    return [answer_text(m) for m in h.fake.messages.values() if m.from_bot and m.chat_id == chat.chat_id]


async def test_check_as_a_reply_checks_a_teammates_draft(feishu: Harness) -> None:
    fake = feishu.fake
    alice, bob = fake.user("Alice"), fake.user("Bob")
    group = fake.group_chat("市场部", members=(alice, bob))
    draft, _ = fake.events.text(group, alice, "全网最低价，只有今天！")  # chatter: never delivered to the bot
    _, event = fake.events.text(group, bob, "@_user_1 /check", mentions=[fake.bot], parent=draft)
    await feishu.send(event)
    await feishu.settle()

    [report] = said(feishu, group)
    assert "合规检查" in report and "「全网最低价」" in report
    [get] = fake.calls_to("im.message.get")
    assert get.path.endswith(f"/messages/{draft.message_id}") and get.code == 0
    assert feishu.gateway.requests == []  # a check, not a model call


async def test_a_rich_text_draft_with_a_mention_is_checked_too(feishu: Harness) -> None:
    fake = feishu.fake
    alice, bob, carol = fake.user("Alice"), fake.user("Bob"), fake.user("Carol")
    group = fake.group_chat("市场部", members=(alice, bob, carol))
    # Its title, a mention of Carol, then paragraphs: every line of words is read.
    draft, _ = fake.events.post(
        group, alice, [" 请看看这条", "最佳选择！100%有效"], title="全网最低价", mentions=[carol]
    )
    _, event = fake.events.text(group, bob, "@_user_1 /check", mentions=[fake.bot], parent=draft)
    await feishu.send(event)
    await feishu.settle()

    [report] = said(feishu, group)
    for phrase in ("「全网最低价」", "「最佳」", "「100%有效」"):
        assert phrase in report, phrase
    assert len(fake.calls_to("im.message.get")) == 1


async def test_an_ordinary_reply_reads_nothing_back(feishu: Harness) -> None:
    fake, gateway = feishu.fake, feishu.gateway
    gateway.default = lambda body: Answer(text=f"echo: {last_user_text(body)}", reasoning=THOUGHT)
    alice, bob = fake.user("Alice"), fake.user("Bob")
    group = fake.group_chat("市场部", members=(alice, bob))
    draft, _ = fake.events.text(group, alice, "全网最低价，只有今天！")
    _, event = fake.events.text(group, bob, "@_user_1 帮我改得温和一点", mentions=[fake.bot], parent=draft)
    await feishu.send(event)
    _, usage = fake.events.text(group, bob, "@_user_1 /usage", mentions=[fake.bot], parent=draft)
    await feishu.send(usage)
    await feishu.settle()

    assert feishu.answers(group) == ["echo: [Bob] 帮我改得温和一点"]
    assert len(fake.ephemeral_cards(group.chat_id, bob)) == 1  # /usage answered as ever
    assert fake.calls_to("im.message.get") == []  # neither a reply nor a command without on_message

    # The one command that works on a message reads it back, once.
    _, check = fake.events.text(group, bob, "@_user_1 /check", mentions=[fake.bot], parent=draft)
    await feishu.send(check)
    await feishu.settle()
    assert "「全网最低价」" in feishu.answers(group)[-1]
    assert len(fake.calls_to("im.message.get")) == 1


async def test_a_recalled_parent_gets_the_usage_and_one_log_line(feishu: Harness, caplog) -> None:
    fake = feishu.fake
    alice, bob = fake.user("Alice"), fake.user("Bob")
    group = fake.group_chat("市场部", members=(alice, bob))
    draft, _ = fake.events.text(group, alice, "全网最低价，只有今天！")
    fake.recall(draft)
    _, event = fake.events.text(group, bob, "@_user_1 /check", mentions=[fake.bot], parent=draft)
    with caplog.at_level(logging.INFO, logger="adapters.feishu.adapter"):
        await feishu.send(event)
        await feishu.settle()

    assert said(feishu, group) == [CHECK_USAGE]
    [get] = fake.calls_to("im.message.get")
    assert get.code == 230011
    [line] = [r for r in caplog.records if draft.message_id in r.getMessage()]
    assert line.levelno == logging.INFO and "230011" in line.getMessage()

    # The adapter goes on: the next reply to a readable draft is checked.
    second, _ = fake.events.text(group, alice, "秒杀最后3件")
    _, again = fake.events.text(group, bob, "@_user_1 /check", mentions=[fake.bot], parent=second)
    await feishu.send(again)
    await feishu.settle()
    assert "「秒杀最后3件」" in said(feishu, group)[-1]


async def test_without_the_scope_for_group_messages_the_usage_is_the_answer(
    make_settings, fake_gateway, fake: FakeFeishu
) -> None:
    alice, bob = fake.user("Alice"), fake.user("Bob")
    group = fake.group_chat("市场部", members=(alice, bob))
    fake.group_messages_readable = False
    h = await _harness(make_settings, fake_gateway, fake)
    try:
        draft, _ = fake.events.text(group, alice, "全网最低价，只有今天！")
        _, event = fake.events.text(group, bob, "@_user_1 /check", mentions=[fake.bot], parent=draft)
        await h.send(event)
        await h.settle()
        assert said(h, group) == [CHECK_USAGE]
        assert [c.code for c in fake.calls_to("im.message.get")] == [230027]
    finally:
        await _close(h)


def test_a_message_read_back_reads_like_a_received_one() -> None:
    """The GET answer names people by a plain ``id`` (not the event's ``{"open_id": …}``)."""
    from adapters.feishu.normalise import Identity, quoted

    me = Identity("ou_bot", "Copy Helper")
    mentions = [
        {"key": "@_user_1", "id": "ou_bot", "name": "Copy Helper"},
        {"key": "@_user_2", "id": "ou_carol", "name": "Carol"},
    ]
    text = '{"text": "@_user_1 @_user_2 全网最低价"}'
    assert quoted("text", text, mentions, me) == "@Carol 全网最低价"
    post = (
        '{"title": "桂花乌龙", "content": [[{"tag": "at", "user_id": "@_user_2", "user_name": "Carol"},'
        ' {"tag": "text", "text": " 最佳选择"}], [{"tag": "img", "image_key": "img_1"}]]}'
    )
    assert quoted("post", post, mentions, me) == "**桂花乌龙**\n@Carol 最佳选择"
    assert quoted("image", '{"image_key": "img_1"}', mentions, me) == ""
    assert quoted("interactive", "{}", mentions, me) == ""
