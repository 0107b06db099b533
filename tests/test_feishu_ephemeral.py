"""Feishu notices meant for one person (``Write.audience``: a refusal, a reached quota, /help)
are cards only that person sees (``ephemeral/v1/send``) in an ordinary group's main chat, and
ordinary messages everywhere else or when Feishu refuses. The real adapter, the real core and
store, against the fake Open Platform (which keeps what each person sees: ``seen_by``)."""

from __future__ import annotations

import logging

import httpx
import pytest

from adapters.feishu.surface import EPHEMERAL, FeishuSurface, Place
from bot.core import texts
from bot.platform import SurfaceGone, Write
from bot.usage.access import NOT_ALLOWED_TEXT
from bot.usage.allowance import Allowance
from bot.usage.periods import Period
from bot.usage.quotas import Scope
from tests.fakes.feishu_api import FakeFeishu
from tests.fakes.feishu_model import FakeChat, FakeMessage, FakeUser
from tests.fakes.gateway import Answer, last_user_text
from tests.feishu_harness import THOUGHT, Harness, _close, _harness, answer_text


def seen(fake: FakeFeishu, chat: FakeChat, user: FakeUser) -> list[str]:
    """What ``user`` reads of the bot in ``chat``, in order."""
    return [answer_text(m) for m in fake.seen_by(chat.chat_id, user) if m.from_bot]


async def ask(h: Harness, chat: FakeChat, user: FakeUser, text: str, **kw: object) -> FakeMessage:
    asked, event = h.fake.events.text(chat, user, f"@_user_1 {text}", mentions=[h.fake.bot], **kw)  # type: ignore[arg-type]
    await h.send(event)
    await h.settle()
    return asked


async def test_a_person_outside_the_allowlist_is_refused_where_only_they_see_it(
    make_settings, fake_gateway, fake: FakeFeishu
) -> None:
    alice, bob, mallory = fake.user("Alice"), fake.user("Bob"), fake.user("Mallory")
    group = fake.group_chat("市场部", members=(alice, bob))
    h = await _harness(make_settings, fake_gateway, fake, FEISHU_ALLOWED_USERS=f"{alice.open_id},{bob.open_id}")
    try:
        await ask(h, group, mallory, "帮我写个标题")
        await ask(h, group, mallory, "在吗？")
        # Mallory reads the refusal, once; the group reads nothing of it.
        assert seen(fake, group, mallory) == [NOT_ALLOWED_TEXT]
        assert seen(fake, group, bob) == seen(fake, group, alice) == [] and fake.bot_messages(group.chat_id) == []
        [card] = fake.ephemeral_cards(group.chat_id, mallory)
        assert card.thread_id is None and card.parent_id is None  # at the group's top level
        assert fake_gateway.requests == []

        fake_gateway.default = lambda body: Answer(text=f"echo: {last_user_text(body)}", reasoning=THOUGHT)
        await ask(h, group, alice, "写三条标题")
        # An answer is for everyone, as before.
        assert seen(fake, group, bob) == ["echo: [Alice] 写三条标题"]
        assert seen(fake, group, mallory) == [NOT_ALLOWED_TEXT, "echo: [Alice] 写三条标题"]
    finally:
        await _close(h)


async def test_help_and_a_reached_quota_in_a_group_are_for_the_asker_alone(feishu: Harness) -> None:
    fake = feishu.fake
    alice, bob = fake.user("Alice"), fake.user("Bob")
    group = fake.group_chat("市场部", members=(alice, bob))
    await ask(feishu, group, alice, "/help")
    [help_text] = seen(fake, group, alice)
    assert "/new" in help_text and texts.HELP_INTRO in help_text
    assert seen(fake, group, bob) == []
    [call] = fake.calls_to("ephemeral.send")
    assert call.code == 0 and call.body["open_id"] == alice.open_id and call.body["chat_id"] == group.chat_id

    quotas = feishu.runtime.service.ops.quotas
    await quotas.set_limit(Scope.USER, f"feishu:{bob.open_id}", Period.DAY, Allowance(tokens=0), by="test")
    await ask(feishu, group, bob, "写一段文案")
    [refusal] = seen(fake, group, bob)
    assert "limit" in refusal and seen(fake, group, alice) == [help_text]
    assert feishu.gateway.requests == [] and fake.bot_messages(group.chat_id) == []


async def test_help_in_a_private_chat_is_an_ordinary_message_and_in_a_group_hers_alone(feishu: Harness) -> None:
    fake = feishu.fake
    alice, bob = fake.user("Alice"), fake.user("Bob")
    chat = fake.p2p_chat(alice)
    _, event = fake.events.text(chat, alice, "/help")
    await feishu.send(event)
    await feishu.settle()
    [message] = fake.bot_messages(chat.chat_id)
    assert "/new" in answer_text(message) and message.visible_to is None
    assert fake.calls_to("ephemeral.send") == []  # Feishu has no such card in a private chat: not asked

    group = fake.group_chat("市场部", members=(alice, bob))
    await ask(feishu, group, alice, "/help")
    assert seen(fake, group, alice) == [answer_text(message)] and seen(fake, group, bob) == []


async def test_in_a_topic_group_or_a_thread_the_notice_stays_in_its_topic(feishu: Harness) -> None:
    fake = feishu.fake
    alice, bob = fake.user("Alice"), fake.user("Bob")
    topics = fake.group_chat("选题会", topic=True, members=(alice, bob))
    root = await ask(feishu, topics, alice, "/help")
    [message] = fake.bot_messages(topics.chat_id)
    # Feishu takes no card for one person in a topic group, and one would leave the topic anyway.
    assert "/new" in answer_text(message) and message.thread_id == root.thread_id
    assert seen(fake, topics, bob) == [answer_text(message)]

    group = fake.group_chat("市场部", members=(alice, bob))
    _, event = fake.events.text(group, bob, "开个话题")
    await feishu.send(event)
    start = fake.transcript(group.chat_id)[-1]
    asked = await ask(feishu, group, alice, "/help", parent=start, in_thread=True)
    [in_thread] = fake.bot_messages(group.chat_id)
    assert in_thread.thread_id == asked.thread_id and "/new" in answer_text(in_thread)  # kept in the thread
    assert fake.calls_to("ephemeral.send") == []

    # The same group's main chat: hers alone.
    await ask(feishu, group, alice, "/help")
    assert fake.bot_messages(group.chat_id) == [in_thread]
    assert seen(fake, group, alice) == [answer_text(in_thread)] * 2


async def test_a_card_feishu_refuses_is_posted_for_everyone_instead(feishu: Harness, caplog) -> None:
    fake = feishu.fake
    alice, bob = fake.user("Alice"), fake.user("Bob")
    group = fake.group_chat("市场部", members=(bob,))
    asked, event = fake.events.text(group, alice, "@_user_1 /help", mentions=[fake.bot])
    group.members.discard(alice.open_id)  # she left the group right after asking
    caplog.set_level(logging.INFO, logger="adapters.feishu.surface")
    await feishu.send(event)
    await feishu.settle()
    [refused] = fake.calls_to("ephemeral.send")
    assert refused.code != 0
    # Not lost: a reply to her question, which everyone sees.
    [message] = fake.bot_messages(group.chat_id)
    assert "/new" in answer_text(message) and message.parent_id == asked.message_id
    assert seen(fake, group, bob) == [answer_text(message)]
    said = [r for r in caplog.records if "for one person refused" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO


async def test_a_card_for_one_person_edited_is_shown_anew_and_the_old_one_taken_away(feishu: Harness) -> None:
    fake = feishu.fake
    alice, bob = fake.user("Alice"), fake.user("Bob")
    group = fake.group_chat("市场部", members=(alice, bob))
    asked = fake.store_user_message(group, alice, "text", '{"text": "hi"}')
    outlet = feishu.adapter.outlet
    assert outlet is not None
    surface = FeishuSurface(outlet, Place(group.chat_id, asked.message_id, main_chat=True))
    ref = await surface.post("第一版", Write(0, final=True, notice=True, audience=alice.open_id))
    assert ref.id.startswith(EPHEMERAL) and seen(fake, group, alice) == ["第一版"]
    again = await surface.edit(ref, "第二版", Write(0, final=True, notice=True, audience=alice.open_id))
    assert again.id.startswith(EPHEMERAL) and again != ref
    assert seen(fake, group, alice) == ["第二版"] and seen(fake, group, bob) == []  # one card, hers alone

    group.bot_member = False  # removed from the group: said at once, nothing tried in its place
    with pytest.raises(SurfaceGone):
        await surface.post("第三版", Write(0, final=True, notice=True, audience=alice.open_id))
    assert fake.calls_to("im.message.reply") == [] and fake.bot_messages(group.chat_id) == []


async def test_with_group_threads_a_notice_asked_in_the_main_chat_opens_no_thread(
    make_settings, fake_gateway, fake: FakeFeishu
) -> None:
    alice, bob = fake.user("Alice"), fake.user("Bob")
    group = fake.group_chat("市场部", members=(alice, bob))
    h = await _harness(make_settings, fake_gateway, fake, FEISHU_GROUP_THREADS=True)
    try:
        await ask(h, group, alice, "/help")
        # Her card sits where she asked; no thread was opened under her question for everyone.
        [help_text] = seen(fake, group, alice)
        assert "/new" in help_text and fake.bot_messages(group.chat_id) == [] and seen(fake, group, bob) == []
    finally:
        await _close(h)


async def test_the_fake_sends_cards_for_one_person_only_where_feishu_does(fake: FakeFeishu) -> None:
    alice, bob = fake.user("Alice"), fake.user("Bob")
    group = fake.group_chat("市场部", members=(alice,))
    topics = fake.group_chat("选题会", topic=True, members=(alice,))
    private = fake.p2p_chat(alice)
    card = {"schema": "2.0", "body": {"elements": [{"tag": "markdown", "content": "只给你看"}]}}
    send = f"{fake.base_url}/open-apis/ephemeral/v1/send"

    async with httpx.AsyncClient() as client:

        def body(chat: FakeChat, user: FakeUser, **extra: object) -> dict:
            return {"chat_id": chat.chat_id, "open_id": user.open_id, "msg_type": "interactive", "card": card, **extra}

        answer = (await client.post(send, json=body(group, alice))).json()
        assert answer["code"] == 99991663  # no token, no card
        got = await client.post(
            f"{fake.base_url}/open-apis/auth/v3/tenant_access_token/internal",
            json={"app_id": fake.app_id, "app_secret": fake.app_secret},
        )
        auth = {"Authorization": f"Bearer {got.json()['tenant_access_token']}"}

        async def code(payload: dict) -> int:
            return int((await client.post(send, json=payload, headers=auth)).json()["code"])

        assert await code(body(topics, alice)) != 0  # topic groups: refused
        assert await code(body(private, alice)) != 0  # private chats: refused
        assert await code(body(group, bob)) != 0  # not in the group: refused
        assert await code(body(group, alice, msg_type="text")) != 0  # cards only
        answer = (await client.post(send, json=body(group, alice), headers=auth)).json()
        assert answer["code"] == 0 and answer["data"]["message_id"].startswith("om_")
        assert [m.text for m in fake.seen_by(group.chat_id, alice)] == ["只给你看"]
        assert fake.seen_by(group.chat_id, bob) == [] and fake.transcript(group.chat_id) == []
        # Not a message anyone can reply to or patch.
        reply = await client.post(
            f"{fake.base_url}/open-apis/im/v1/messages/{answer['data']['message_id']}/reply",
            json={"msg_type": "text", "content": '{"text": "hi"}'},
            headers=auth,
        )
        assert reply.json()["code"] != 0
        deleted = await client.post(
            f"{fake.base_url}/open-apis/ephemeral/v1/delete",
            json={"message_id": answer["data"]["message_id"]},
            headers=auth,
        )
        assert deleted.json()["code"] == 0 and fake.ephemeral_cards() == []
