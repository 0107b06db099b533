"""Brand profiles and compliance through the Telegram adapter (issue 18): the real
python-telegram-bot Application against the fake Bot API, the real core and store, the fake
gateway. ``/brand set`` → the Save button → the stored profile; ``/check`` as a command and as a
reply to someone's draft; the "fix compliance" button on a copy variant."""

from __future__ import annotations

import json

from bot.copywriting.refine import ACTIONS, COMPLY
from bot.platform.messages import ConversationKey
from bot.store.brands import BrandStore
from tests.fakes.gateway import Answer, last_user_text
from tests.fakes.telegram_api import FakeTelegram, StoredMessage
from tests.polling import eventually
from tests.telegram_harness import ALICE, BOB, CAROL, GROUP, _buttons, answered, no_limit_broken

PROFILE = {
    "name": "山茶集",
    "audience": "25–35 岁的都市女性",
    "tone": "温和",
    "words_to_use": [],
    "words_never": ["平替"],
    "products": [
        {
            "name": "山茶花精华",
            "aliases": [],
            "selling_points": ["温和不刺激"],
            "price": "129元",
            "specs": [{"name": "容量", "value": "30ml"}],
        }
    ],
}


def command(fake: FakeTelegram, chat_id: int, user: dict, text: str, **kw) -> dict:
    return fake.send_user_message(chat_id, user, text, entities=[FakeTelegram.command_entity(text)], **kw)


async def reply_containing(fake: FakeTelegram, chat_id: int, words: str, after: int = 0) -> StoredMessage:
    found = await eventually(lambda: [m for m in fake.bot_messages(chat_id)[after:] if words in m.text])
    return found[0]  # type: ignore[index]


def labels(message: StoredMessage) -> dict[str, str]:
    markup = message.reply_markup or {}
    return {b["callback_data"]: b["text"] for row in markup.get("inline_keyboard", []) for b in row}


async def test_brand_set_then_the_save_button_stores_the_profile_and_check_uses_it(start_bot, tg, fake_gateway) -> None:
    bot = await start_bot()
    fake_gateway.script(Answer(text=json.dumps(PROFILE, ensure_ascii=False), reasoning="整理"))
    command(tg, GROUP, ALICE, f"/brand@{tg.username} set 山茶集：山茶花精华 30ml 129元，禁用词：平替")
    [draft] = await answered(tg, GROUP)
    assert "品牌资料草稿 · 山茶集" in draft.text and "山茶花精华 · ¥129 · 容量 30ml" in draft.text
    save = next(data for data, label in labels(draft).items() if label == "✅ 保存")
    assert save == f"brand:{save.split(':')[1]}:save"

    tg.press_button(GROUP, draft.message_id, BOB, save)
    saved_note = await reply_containing(tg, GROUP, "已保存")
    assert "Bob" in saved_note.text and "山茶集" in saved_note.text
    await eventually(lambda: "Saved ✓" in [c.params.get("text") for c in tg.calls_to("answerCallbackQuery")])
    key = ConversationKey("telegram", str(bot.adapter.me.id), str(GROUP))
    stored = await BrandStore(bot.runtime.db).get(key)
    assert stored is not None and stored.updated_by == f"telegram:{BOB['id']}"
    assert stored.profile.to_dict()["products"][0]["price"] == {"amount": "129", "currency": "CNY"}

    # /check: the law, 小红书's rules and the brand's facts, without calling the model.
    calls = len(fake_gateway.requests)
    before = len(tg.bot_messages(GROUP))
    command(tg, GROUP, CAROL, f"/check@{tg.username} xhs 山茶花精华全网最低价，只要99元！比平替还好用，加vx：shancha88")
    report = await reply_containing(tg, GROUP, "合规检查", before)
    assert "合规检查（小红书种草笔记 · 山茶集）：4 处须修改" in report.text
    for phrase in (
        "「全网最低价」价格比较 → 「活动价」",
        "「99元」与品牌资料不符 → 「129元」",
        "「平替」品牌禁用词",
        "「vx：shancha88」平台规则 → 删除",
    ):
        assert phrase in report.text, phrase
    assert "不构成法律意见" in report.text
    assert len(fake_gateway.requests) == calls
    no_limit_broken(tg)


async def test_check_as_a_reply_checks_the_replied_to_draft(start_bot, tg, fake_gateway) -> None:
    await start_bot()
    draft = tg.send_user_message(GROUP, CAROL, "最佳选择！秒杀最后3件，100%有效")
    command(tg, GROUP, BOB, f"/check@{tg.username}", reply_to=draft["message_id"])
    report = await reply_containing(tg, GROUP, "合规检查")
    assert "合规检查：2 处须修改，1 处请人工确认" in report.text
    assert "1. 「最佳」绝对化用语 → 「出色」" in report.text
    assert "2. 「秒杀最后3件」制造紧迫感（请人工确认）" in report.text
    assert "3. 「100%有效」保证性用语 → 「效果明显」" in report.text
    command(tg, GROUP, BOB, f"/check@{tg.username} 今天的桂花乌龙很好喝")
    clean = await reply_containing(tg, GROUP, "没有发现违规用语")
    assert "✅" in clean.text
    assert fake_gateway.requests == []


async def test_the_fix_compliance_button_reworks_only_that_variant(start_bot, tg, fake_gateway) -> None:
    await start_bot()
    command(tg, GROUP, ALICE, f"/style@{tg.username} xiaohongshu")
    await reply_containing(tg, GROUP, "小红书")
    notes = [
        {"title": f"桂花乌龙{i}", "body": body, "hashtags": ["桂花乌龙", "好茶推荐", "下午茶"]}
        for i, body in enumerate(
            ("桂花乌龙真的香🌼，冷泡热泡都好喝。", "全网最低价🔥，错过再等一年！", "下午三点来一杯，整个人都醒了☕。"),
            1,
        )
    ]
    fake_gateway.script(
        Answer(text=json.dumps({"variants": notes}, ensure_ascii=False)),
        Answer(text=json.dumps({"variants": [notes[1]]}, ensure_ascii=False)),
    )  # not repaired
    text = f"@{tg.username} 写桂花乌龙的种草笔记"
    tg.send_user_message(GROUP, BOB, text, entities=[tg.mention_entity(text)])
    copy = next(m for m in await answered(tg, GROUP) if any(b.startswith("refine:") for b in _buttons(m)))
    assert "方案 2 · 桂花乌龙2 ⛔" in copy.text and "「全网最低价」价格比较 → 「活动价」" in copy.text
    turn = _buttons(copy)[-3].split(":")[1]
    refine = [b for b in _buttons(copy) if b.startswith("refine:")]
    assert refine == [
        f"refine:{turn}:{n}:{a}"
        for n, actions in ((1, ACTIONS), (2, (COMPLY, *ACTIONS)), (3, ACTIONS))
        for a in actions
    ]
    assert labels(copy)[f"refine:{turn}:2:{COMPLY}"] == "2 · 合规修改"

    fake_gateway.script(
        Answer(text=json.dumps({"variants": [{**notes[1], "body": "活动价🔥，这周入手正合适。"}]}, ensure_ascii=False))
    )
    tg.press_button(GROUP, copy.message_id, CAROL, f"refine:{turn}:2:{COMPLY}")
    await answered(tg, GROUP, 2)
    refined = tg.bot_messages(GROUP)[-1]
    asked = last_user_text(fake_gateway.last.body)
    assert "Refine option 2" in asked and '"全网最低价"' in asked and "桂花乌龙1" not in asked
    assert "活动价🔥" in refined.text and "合规检查：未发现问题" in refined.text
    await eventually(lambda: "On it…" in [c.params.get("text") for c in tg.calls_to("answerCallbackQuery")])
    no_limit_broken(tg)
