"""A core command on a message's ⋯ menu (Slack message shortcuts): /check run on a teammate's
draft, which a slash command cannot reach. Real slack-bolt against the fake Slack, the real
core and store."""

from __future__ import annotations

import json
from pathlib import Path

from adapters.slack import commands
from bot.compliance.brand import BrandProfile
from bot.store.brands import BrandStore, Place
from tests.fakes.slack_api import BOT_USER_ID, TEAM_ID
from tests.slack_harness import CHANNEL, DM, Harness

DRAFT = "全网最低价，只有今天！加vx：abc12345 详情 <https://xhs.link/a1b2|xhs.link/a1b2>"


async def test_check_on_a_teammates_draft_is_shown_to_the_picker_alone_in_its_thread(slack: Harness):
    fake, gw = slack.fake, slack.gateway
    thread, _ = fake.user_message(CHANNEL, "新品文案初稿，大家看看", user="U0BOB0001")
    ts, _ = fake.user_message(CHANNEL, DRAFT, user="U0BOB0001", thread_ts=thread)
    draft = fake.messages[(CHANNEL, ts)]
    assert (await slack.click(fake.message_shortcut(draft, commands.shortcut_id("check")))).status_code == 200
    await slack.settle()
    [report] = fake.ephemerals_for("U0ALICE01", CHANNEL)
    assert report.thread_ts == thread  # beside the draft, in its thread
    assert "「全网最低价」" in report.text and "广告法" in report.text
    assert not fake.bot_replies(CHANNEL, thread) and not fake.calls_to("chat.postMessage")  # nobody else sees it
    assert not fake.ephemerals_for("U0BOB0001")
    assert gw.served == 0  # a check costs no model call

    # The draft's thread did not become the bot's: a reply there without a mention is not answered.
    _, follow = fake.user_message(CHANNEL, "改好了吗？", user="U0BOB0001", thread_ts=thread)
    await slack.send(follow)
    await slack.settle()
    assert not fake.bot_replies(CHANNEL, thread) and gw.served == 0


async def test_a_message_in_a_styled_thread_is_checked_against_that_platforms_rules(slack: Harness):
    fake = slack.fake
    thread, mention = fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> !style xiaohongshu", mention=True)
    await slack.send(mention)
    await slack.settle()
    ts, _ = fake.user_message(CHANNEL, DRAFT, user="U0BOB0001", thread_ts=thread)
    await slack.click(fake.message_shortcut(fake.messages[(CHANNEL, ts)], commands.shortcut_id("check")))
    await slack.settle()
    [report] = fake.ephemerals_for("U0ALICE01", CHANNEL)
    assert "小红书" in report.text  # the thread's style named in the verdict
    assert "abc12345" in report.text and "xhs.link" in report.text  # its contact and link rules, Slack's markup undone
    # Checking did not make the thread the bot's beyond what the mention already did.
    assert slack.gateway.served == 0


async def test_the_channels_brand_profile_is_checked_too(slack: Harness):
    fake = slack.fake
    profile = BrandProfile("山茶集", words_never=("平替",))
    await BrandStore(slack.runtime.db).save(Place("slack", TEAM_ID, CHANNEL), profile, by="test")
    ts, _ = fake.user_message(CHANNEL, "山茶集精华，大牌平替", user="U0BOB0001")
    await slack.click(fake.message_shortcut(fake.messages[(CHANNEL, ts)], commands.shortcut_id("check")))
    await slack.settle()
    [report] = fake.ephemerals_for("U0ALICE01", CHANNEL)
    assert "「平替」" in report.text, report.text


async def test_check_on_a_clean_message_in_a_dm_answers_in_its_thread(slack: Harness):
    fake = slack.fake
    ts, _ = fake.user_message(DM, "山茶花精华，温和补水，适合干皮")
    picked = fake.messages[(DM, ts)]
    await slack.click(fake.message_shortcut(picked, commands.shortcut_id("check")))
    await slack.settle()
    [report] = fake.bot_replies(DM, ts)  # a DM is private already: an ordinary reply
    assert "没有发现违规用语" in report.text, report.text


async def test_a_shortcut_from_someone_outside_the_allowlist_is_refused_unchecked(slack_with):
    slack: Harness = await slack_with(SLACK_ALLOWED_USERS="U0BOB0001")
    fake = slack.fake
    ts, _ = fake.user_message(CHANNEL, DRAFT, user="U0BOB0001")
    await slack.click(fake.message_shortcut(fake.messages[(CHANNEL, ts)], commands.shortcut_id("check")))
    await slack.settle()
    assert not fake.ephemerals and not fake.bot_replies(CHANNEL, ts)  # no report, anywhere
    assert [r.get("response_type") for r in fake.responses] == ["ephemeral"]  # one refusal, for Alice alone
    assert "全网最低价" not in json.dumps(fake.responses, ensure_ascii=False)


async def test_a_shortcut_the_bot_does_not_offer_is_acknowledged_and_dropped(slack: Harness):
    fake = slack.fake
    ts, _ = fake.user_message(CHANNEL, DRAFT, user="U0BOB0001")
    response = await slack.click(fake.message_shortcut(fake.messages[(CHANNEL, ts)], "cmd_nonexistent"))
    assert response.status_code == 200
    await slack.settle()
    assert not fake.ephemerals and not fake.bot_replies(CHANNEL, ts) and not fake.responses


def test_the_manifests_offer_each_message_command_as_a_shortcut() -> None:
    from bot.brands.brand_extension import brands_extension

    offered = {
        commands.shortcut_id(c.info.name): c.info.on_message
        for c in brands_extension(None).commands  # type: ignore[arg-type]
        if c.info.on_message
    }
    assert "cmd_check" in offered
    for name in ("manifest.socket.json", "manifest.http.json"):
        manifest = json.loads((Path(commands.__file__).parent / name).read_text())
        shortcuts = {s["callback_id"]: s for s in manifest["features"]["shortcuts"]}
        for callback_id, label in offered.items():
            assert shortcuts[callback_id]["type"] == "message" and shortcuts[callback_id]["name"] == label
        for s in shortcuts.values():
            assert len(s["name"]) <= 24 and len(s["description"]) <= 150  # Slack's manifest limits


def test_a_shortcut_payload_is_read_into_plain_text() -> None:
    body = {
        "type": "message_action",
        "callback_id": "cmd_check",
        "trigger_id": "9.9",
        "team": {"id": "T1"},
        "user": {"id": "U1"},
        "channel": {"id": "C1"},
        "message": {"ts": "2.0", "thread_ts": "1.0", "text": "a &lt;b&gt; &amp; <https://x.y/z|x.y/z> <@U2>"},
    }
    shortcut = commands.parse_shortcut(body)
    assert shortcut is not None
    assert (shortcut.command, shortcut.channel, shortcut.thread_ts, shortcut.user) == ("check", "C1", "1.0", "U1")
    assert shortcut.text == "a <b> & https://x.y/z <@U2>"
    assert commands.parse_shortcut({**body, "callback_id": "stop_answer"}) is None
    assert commands.parse_shortcut({**body, "message": {"text": "no ts"}}) is None
