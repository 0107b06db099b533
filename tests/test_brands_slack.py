"""Brand profiles and compliance through Slack (issue 18): real slack-bolt / slack-sdk against the
fake Slack API, the real core and store, the fake gateway. ``/check`` as a slash command and as
a mention in a thread, ``/brand set`` and its Save button, and "fix compliance" in a variant's
refinement select."""

from __future__ import annotations

import json

from bot.copywriting.refine import ACTIONS, COMPLY
from bot.platform.controls import Press
from bot.platform.messages import ConversationKey
from bot.store.brands import BrandStore
from tests.fakes.gateway import Answer, last_user_text
from tests.fakes.slack_api import BOT_USER_ID, TEAM_ID, FakeMessage
from tests.slack_harness import CHANNEL, Harness
from tests.test_slack_copywriting import anchors, refine_option

BOB, CAROL = "U0BOB0001", "U0CAROL01"
PROFILE = {
    "name": "山茶集",
    "audience": "",
    "tone": "温和",
    "words_to_use": [],
    "words_never": ["平替"],
    "products": [{"name": "山茶花精华", "aliases": [], "selling_points": [], "price": "129元", "specs": []}],
}


def options(message: FakeMessage, variant: int) -> list[str]:
    return [Press.decode(o["value"]).args[1] for o in message.element(f"answer_refine_{variant}")["options"]]


async def test_check_slash_command_and_mention_answer_in_a_thread(slack: Harness) -> None:
    fake = slack.fake
    response = await slack.command(fake.slash_command(CHANNEL, "/check", "xiaohongshu 全网最低价！私信我领优惠券"))
    assert response.status_code == 200
    await slack.settle()
    [anchor] = anchors(fake, CHANNEL)
    [report] = fake.bot_replies(CHANNEL, anchor.ts)
    assert "**合规检查（小红书种草笔记）**：1 处须修改，1 处请人工确认" in report.text
    assert "「全网最低价」价格比较 → 「活动价」" in report.text and "「私信我」平台规则（请人工确认）" in report.text

    # In a thread, by mention: the text after "!check" is checked; nothing goes to the model.
    ts, mention = fake.user_message(
        CHANNEL, f"<@{BOT_USER_ID}> !check 这款面霜永久有效，绝对不过敏", user=BOB, mention=True
    )
    await slack.send(mention)
    await slack.settle()
    reply = fake.bot_replies(CHANNEL, ts)[-1]
    assert "「永久」" in reply.text and "保证性用语" in reply.text
    assert slack.gateway.requests == []


async def test_brand_set_save_button_and_fix_compliance_select(slack: Harness) -> None:
    fake, gw = slack.fake, slack.gateway
    ts, mention = fake.user_message(
        CHANNEL, f"<@{BOT_USER_ID}> !brand set 山茶集，山茶花精华129元，禁用词平替", mention=True
    )
    gw.script(Answer(text=json.dumps(PROFILE, ensure_ascii=False)))
    await slack.send(mention)
    await slack.settle()
    draft = fake.bot_replies(CHANNEL, ts)[-1]
    assert "品牌资料草稿 · 山茶集" in draft.text
    save = draft.element("answer_brand_save")
    assert save["text"]["text"] == "✅ 保存" and Press.decode(save["value"]).args == ("save",)
    assert (await slack.click(fake.block_action(draft, "answer_brand_save", user=BOB))).status_code == 200
    await slack.settle()
    assert "已保存" in fake.bot_replies(CHANNEL, ts)[-1].text
    stored = await BrandStore(slack.runtime.db).get(ConversationKey("slack", TEAM_ID, CHANNEL))
    assert stored is not None and stored.updated_by == f"slack:{BOB}" and stored.profile.words_never == ("平替",)

    # Copy in the thread: a never-use word the repair round does not remove is marked, with the action.
    await slack.send(fake.user_message(CHANNEL, "!style xiaohongshu", user=BOB, thread_ts=ts)[1])
    await slack.settle()
    notes = [
        {"title": f"山茶{i}", "body": body, "hashtags": ["山茶花", "护肤", "精华"]}
        for i, body in enumerate(("上脸很舒服🌿。", "大牌平替🔥，闭眼入。"), 1)
    ]
    gw.script(
        Answer(text=json.dumps({"variants": notes + [{**notes[0], "title": "山茶3"}]}, ensure_ascii=False)),
        Answer(text=json.dumps({"variants": [notes[1]]}, ensure_ascii=False)),
    )
    await slack.send(fake.user_message(CHANNEL, "写山茶花精华", user=CAROL, thread_ts=ts)[1])
    await slack.settle()
    copy = fake.bot_replies(CHANNEL, ts)[-1]
    assert "⛔" in copy.text and "「平替」品牌禁用词" in copy.text
    assert options(copy, 1) == list(ACTIONS) and options(copy, 2) == [COMPLY, *ACTIONS]
    gw.script(
        Answer(text=json.dumps({"variants": [{**notes[1], "body": "口碑好物🔥，换季放心用。"}]}, ensure_ascii=False))
    )
    pick = fake.block_action(copy, "answer_refine_2", user=CAROL, option=refine_option(copy, 2, COMPLY))
    assert (await slack.click(pick)).status_code == 200
    await slack.settle()
    asked = last_user_text(gw.last.json)
    assert "Refine option 2" in asked and '"平替"' in asked
    refined = fake.bot_replies(CHANNEL, ts)[-1]
    assert "口碑好物" in refined.text and "合规检查：未发现问题" in refined.text
