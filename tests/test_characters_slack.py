"""Characters through Slack: real slack-bolt / slack-sdk against the fake Slack API, the real
core and store, the fake gateway. A PNG card shared in a DM is offered with buttons,
imported after a click, exported back into a thread (files.getUploadURLExternal, the upload,
files.completeUploadExternal) and imports again from that file; a scene in a channel thread
is rendered as a script; ``/character use`` in a channel makes later threads speak as it."""

from __future__ import annotations

import json

from bot.characters.cards import read_card
from bot.platform.messages import ConversationKey
from bot.store.characters import CharacterStore
from tests.fakes.gateway import Answer
from tests.fakes.slack_api import BOT_USER_ID, TEAM_ID, FakeMessage
from tests.slack_harness import CHANNEL, DM, Harness
from tests.test_characters_cards import raw
from tests.test_characters_telegram import png_card, same, scene_answer
from tests.test_slack_copywriting import anchors

BOB = "U0BOB0001"


def dm_key(thread: str) -> ConversationKey:
    return ConversationKey("slack", TEAM_ID, DM, thread)


async def share(
    slack: Harness,
    channel: str,
    data: bytes,
    name: str,
    mime: str,
    *,
    text: str = "",
    user: str = "U0ALICE01",
    thread_ts: str | None = None,
    mention: bool = False,
) -> str:
    f = slack.fake.add_file(name, mime, data)
    ts, envelope = slack.fake.user_message(channel, text, files=[f], user=user, thread_ts=thread_ts, mention=mention)
    await slack.send(envelope)
    await slack.settle()
    return ts


async def click(slack: Harness, message: FakeMessage, prefix: str, user: str = "U0ALICE01") -> None:
    action_id = next(a for a in message.button_ids if a.startswith(prefix))
    assert (await slack.click(slack.fake.block_action(message, action_id, user=user))).status_code == 200
    await slack.settle()


async def test_a_png_card_shared_in_a_dm_is_imported_exported_and_imported_back(slack: Harness) -> None:
    fake, gw = slack.fake, slack.gateway
    ts = await share(slack, DM, png_card(), "tuantuan.png", "image/png")
    [offer] = fake.bot_replies(DM, ts)
    assert "Import this character?" in offer.text and "团团" in offer.text
    assert gw.requests == [], "the card is not sent to the model as an image"
    await click(slack, offer, "answer_chr_card_use")
    replies = fake.bot_replies(DM, ts)
    assert "Speaking as **团团**" in replies[1].text and replies[2].text.startswith("嗨嗨～Alice！团团来啦")
    store = CharacterStore(slack.runtime.db)
    saved = await store.find(dm_key(ts), "团团")
    assert saved is not None and saved.has_avatar

    # /character export: an anchor in the DM, the file shared in its thread.
    await slack.command(fake.slash_command(DM, "/character", "export 团团"))
    await slack.settle()
    uploads = [
        c.method
        for c in fake.calls
        if c.method.startswith("files.") and c.method not in ("files.info", "files.download")
    ]
    assert uploads == ["files.getUploadURLExternal", "files.upload_url", "files.completeUploadExternal"]
    complete = fake.calls_to("files.completeUploadExternal")[-1]
    assert complete.ok and complete.args["channel_id"] == DM and complete.args.get("thread_ts")
    [shared] = [m for m in fake.bot_replies(DM, complete.args["thread_ts"]) if m.files]
    exported = fake.files[shared.files[0]["id"]]
    assert exported.name == "团团.json" and "Character Card V2" in shared.text
    assert json.loads(exported.data)["spec"] == "chara_card_v2"

    # Bob shares that file in the channel, mentioning the bot: offered, saved, the same character.
    ts2 = await share(
        slack,
        CHANNEL,
        exported.data,
        "团团.json",
        "application/json",
        user=BOB,
        text=f"<@{BOT_USER_ID}> here's the mascot",
        mention=True,
    )
    [offer2] = fake.bot_replies(CHANNEL, ts2)
    assert "Import this character?" in offer2.text
    await click(slack, offer2, "answer_chr_card_save", user=BOB)
    bobs = await store.find(ConversationKey("slack", TEAM_ID, CHANNEL, ts2), "团团")
    assert bobs is not None and bobs.owner == BOB and same(bobs.character, saved.character)
    assert read_card(exported.data, "团团.json").character.to_dict() == saved.character.to_dict()
    assert gw.requests == [], "nothing of this called the model"
    assert fake.rate_limited == []


async def test_use_in_a_channel_makes_later_threads_speak_as_the_character_and_scenes_render(slack: Harness) -> None:
    fake, gw = slack.fake, slack.gateway
    ts = await share(
        slack,
        CHANNEL,
        raw("sillytavern_v2.json"),
        "bao.json",
        "application/json",
        text=f"<@{BOT_USER_ID}> import",
        mention=True,
    )
    await click(slack, fake.bot_replies(CHANNEL, ts)[0], "answer_chr_card_save")
    ts = await share(
        slack, CHANNEL, png_card(), "tuantuan.png", "image/png", text=f"<@{BOT_USER_ID}> and this", mention=True
    )
    await click(slack, fake.bot_replies(CHANNEL, ts)[0], "answer_chr_card_save")
    await slack.command(fake.slash_command(CHANNEL, "/character", "use Captain Bao"))
    await slack.settle()
    anchor = anchors(fake, CHANNEL)[-1]
    assert "Speaking as **Captain Bao**" in slack.reply_text(CHANNEL, anchor.ts)

    # A new mention, a new thread: Captain Bao answers.
    gw.script(Answer(text="Arr! Pork buns for all!", reasoning="in voice"))
    ts3, mention = fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> what's for lunch?", mention=True)
    await slack.send(mention)
    await slack.settle()
    assert '<character_sheet name="Captain Bao">' in gw.last.json["messages"][0]["content"]
    assert fake.bot_replies(CHANNEL, ts3)[-1].text == "Arr! Pork buns for all!"

    # A scene in that thread, with !scene (slash commands can't be typed in threads).
    gw.script(
        Answer(
            text=scene_answer(
                [("Captain Bao", "Ahoy, panda!", "waves his hat", ""), ("团团", "船长好～🐼", "", "")], title="Lunch"
            ),
            reasoning="scene",
        )
    )
    _, again = fake.user_message(CHANNEL, "!scene Captain Bao, 团团: lunch at the harbour", thread_ts=ts3)
    await slack.send(again)
    await slack.settle()
    script = fake.bot_replies(CHANNEL, ts3)[-1].text
    assert script.startswith("**🎬 Lunch**")
    assert "**Captain Bao**: *(waves his hat)* Ahoy, panda!" in script and "**团团**: 船长好～🐼" in script
    assert '{"' not in script
