"""Characters through the Telegram adapter: the real python-telegram-bot Application against
the fake Bot API, the real core and store, the fake gateway.

A V3 PNG card sent as a file is offered, imported after a tap on its button, exported back
with sendDocument (JSON and PNG) and imports again unchanged from that file; a scene is
rendered as a script with Telegram entities (and timing cues in a short-video chat); in a
group a character answers when called by name and a member who doesn't own it can't delete it.
"""

from __future__ import annotations

import json

from bot.characters.cards import read_card
from bot.characters.character import Character
from bot.store.characters import CharacterStore
from tests import pngs
from tests.fakes.gateway import Answer
from tests.fakes.telegram_api import FakeTelegram, StoredMessage
from tests.polling import eventually
from tests.telegram_harness import ALICE, BOB, GROUP, THINK, _buttons, no_limit_broken
from tests.test_characters_cards import raw

V3 = json.loads(raw("mascot_zh_v3.json"))
CHARACTER, SCENE = FakeTelegram.command_entity("/character"), FakeTelegram.command_entity("/scene")


def png_card() -> bytes:
    """A real-format card PNG: the V3 card in ``ccv3`` and a V2 view of it in ``chara``, after the image."""
    v2 = {
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": {k: v for k, v in V3["data"].items() if k not in ("group_only_greetings", "assets", "nickname")},
    }
    return pngs.png(16, 16, after=(pngs.text("chara", pngs.card_b64(v2)), pngs.text("ccv3", pngs.card_b64(V3))))


def send_file(fake: FakeTelegram, chat_id: int, user: dict, data: bytes, name: str, mime: str) -> dict:
    """A file sent as a document (uncompressed); in a group, with a caption that mentions the bot."""
    file_id = fake.add_file(data, suffix=name.rsplit(".", 1)[-1])
    extra: dict = {
        "document": {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_name": name,
            "mime_type": mime,
            "file_size": len(data),
        }
    }
    if chat_id < 0:
        caption = f"@{fake.username} our mascot"
        extra.update(caption=caption, caption_entities=[fake.mention_entity(caption)])
    return fake.send_user_message(chat_id, user, extra=extra)


async def bot_says(bot, fake: FakeTelegram, chat_id: int, count: int) -> list[StoredMessage]:
    """The bot's messages once there are ``count`` and everything handed in was handled."""
    await eventually(lambda: len(fake.bot_messages(chat_id)) >= count)
    await bot.adapter.drain()
    return fake.bot_messages(chat_id)


def press(fake: FakeTelegram, chat_id: int, message: StoredMessage, user: dict, label: str) -> None:
    rows = (message.reply_markup or {}).get("inline_keyboard", [])
    [data] = [b["callback_data"] for row in rows for b in row if label in b["text"]]
    fake.press_button(chat_id, message.message_id, user, data)


def downloaded(fake: FakeTelegram, document: dict) -> bytes:
    return fake.files[document["file_id"]][0]


async def test_a_png_card_is_imported_with_a_tap_exported_and_imported_back(start_bot, tg, fake_gateway) -> None:
    bot = await start_bot()
    chat = ALICE["id"]
    send_file(tg, chat, ALICE, png_card(), "tuantuan.png", "image/png")
    [offer] = await bot_says(bot, tg, chat, 1)
    assert "Import this character?" in offer.text and "团团" in offer.text
    assert "chara_card_v3" in offer.text.replace(" ", "_"), "the V3 chunk wins"
    assert fake_gateway.requests == [], "the card never reaches the model as an image"
    assert all(b.startswith("chr:") for b in _buttons(offer))
    press(tg, chat, offer, ALICE, "Save & use")
    messages = await bot_says(bot, tg, chat, 3)
    assert "Speaking as 团团" in messages[1].text and messages[2].text.startswith("嗨嗨～Alice！团团来啦🐼🍵")
    answers = [c for c in tg.calls_to("answerCallbackQuery") if c.ok]
    assert answers and answers[-1].params.get("text") == "Saved."
    store = CharacterStore(bot.runtime.db)
    saved = await store.find(offer_key(tg, chat), "团团")
    assert saved is not None and saved.has_avatar, "the card's picture is kept as its avatar"

    # Exported back as a V2 JSON file…
    tg.send_user_message(chat, ALICE, "/character export 团团", entities=[CHARACTER])
    exported = (await bot_says(bot, tg, chat, 4))[3]
    assert exported.document is not None and exported.document["file_name"] == "团团.json"
    assert "Character Card V2" in exported.text
    card = json.loads(downloaded(tg, exported.document))
    assert card["spec"] == "chara_card_v2" and card["data"]["name"] == "团团"
    # … and as a PNG card, with the avatar.
    tg.send_user_message(chat, ALICE, "/character export 团团 png", entities=[CHARACTER])
    exported_png = (await bot_says(bot, tg, chat, 5))[4]
    assert exported_png.document is not None and exported_png.document["file_name"] == "团团.png"
    again_png = read_card(downloaded(tg, exported_png.document), "团团.png")
    assert again_png.avatar is not None and same(again_png.character, saved.character)

    # A file Telegram refuses: the card comes as text instead.
    tg.inject("sendDocument", status=400, description="Bad Request: wrong file identifier/HTTP URL specified")
    tg.send_user_message(chat, ALICE, "/character export 团团", entities=[CHARACTER])
    fallback = (await bot_says(bot, tg, chat, 6))[5]
    assert fallback.document is None and "couldn't send a file here" in fallback.text
    assert '"spec": "chara_card_v2"' in fallback.text

    # Bob gets the JSON file and sends it to the bot: offered, saved, the same character.
    send_file(tg, BOB["id"], BOB, downloaded(tg, exported.document), "团团.json", "application/json")
    [bobs_offer] = await bot_says(bot, tg, BOB["id"], 1)
    assert "Import this character?" in bobs_offer.text
    press(tg, BOB["id"], bobs_offer, BOB, "✅ Save")
    await bot_says(bot, tg, BOB["id"], 2)
    bobs = await store.find(offer_key(tg, BOB["id"]), "团团")
    assert bobs is not None and bobs.owner == str(BOB["id"]) and same(bobs.character, saved.character)
    no_limit_broken(tg)


def offer_key(fake: FakeTelegram, chat_id: int):
    from bot.platform.messages import ConversationKey

    return ConversationKey("telegram", str(fake.bot_id), str(chat_id))


def same(a: Character, b: Character) -> bool:
    """Equal in everything a V2 export carries (V3-only parts are kept in its extensions)."""
    return a.to_dict() == b.to_dict()


def scene_answer(lines: list[tuple[str, str, str, str]], title: str = "新品发布") -> str:
    return json.dumps(
        {
            "title": title,
            "lines": [
                {"speaker": s, "text": t, "direction": d, **({"timing": c} if c else {})} for s, t, d, c in lines
            ],
        },
        ensure_ascii=False,
    )


async def save_two(bot, fake: FakeTelegram, chat_id: int) -> None:
    """团团 (imported from the PNG) and Captain Bao (a V2 JSON card), both saved in the chat."""
    send_file(fake, chat_id, ALICE, png_card(), "tuantuan.png", "image/png")
    [offer] = await bot_says(bot, fake, chat_id, 1)
    press(fake, chat_id, offer, ALICE, "✅ Save")
    await bot_says(bot, fake, chat_id, 2)
    send_file(fake, chat_id, ALICE, raw("sillytavern_v2.json"), "bao.json", "application/json")
    offer = (await bot_says(bot, fake, chat_id, 3))[2]
    press(fake, chat_id, offer, ALICE, "✅ Save")
    await bot_says(bot, fake, chat_id, 4)


async def test_a_scene_is_rendered_as_a_script_with_timing_in_a_video_chat(start_bot, tg, fake_gateway) -> None:
    bot = await start_bot()
    chat = ALICE["id"]
    await save_two(bot, tg, chat)
    fake_gateway.script(
        Answer(
            text=scene_answer(
                [
                    ("团团", "船长！新品桂花乌龙到啦～🐼", "举起奶茶", ""),
                    ("Captain Bao", "Arr, a brew worth sailin' for!", "sniffs the cup", ""),
                    ("narrator", "", "两人碰杯", ""),
                ]
            ),
            reasoning=THINK,
        )
    )
    tg.send_user_message(chat, ALICE, "/scene 团团, Captain Bao: 新品上市", entities=[SCENE])
    script = (await bot_says(bot, tg, chat, 5))[4]
    assert fake_gateway.last.body["response_format"]["json_schema"]["name"] == "scene"
    assert "团团：船长！" not in script.text  # names are bold entities, directions italic
    assert "🎬 新品发布" in script.text and "Captain Bao：" in script.text and "（举起奶茶）" in script.text
    bold = {
        script.text.encode("utf-16-le")[e["offset"] * 2 : (e["offset"] + e["length"]) * 2].decode("utf-16-le")
        for e in script.entities
        if e["type"] == "bold"
    }
    assert {"团团", "Captain Bao"} <= bold
    assert any(e["type"] == "italic" for e in script.entities)

    # In a chat whose style is a short-video script, every line carries its timing cue.
    tg.send_user_message(chat, ALICE, "/style douyin", entities=[FakeTelegram.command_entity("/style")])
    await bot_says(bot, tg, chat, 6)
    fake_gateway.script(
        Answer(
            text=scene_answer(
                [
                    ("团团", "3秒告诉你新品有多香！", "凑近镜头", "0-3s"),
                    ("Captain Bao", "Smell that, crew!", "", "3-8s"),
                    ("团团", "快来门店尝尝～", "挥手", "8-12s"),
                ]
            ),
            reasoning=THINK,
        )
    )
    tg.send_user_message(chat, ALICE, "/scene 团团, Captain Bao: 新品短视频", entities=[SCENE])
    timed = (await bot_says(bot, tg, chat, 7))[6]
    assert "seconds" in fake_gateway.last.body["messages"][-1]["content"]
    assert "0-3s" in timed.text and "8-12s" in timed.text
    assert any(e["type"] == "code" for e in timed.entities), "timing cues are set off as code"
    no_limit_broken(tg)


async def test_in_a_group_a_called_character_answers_and_members_cant_delete_it(start_bot, tg, fake_gateway) -> None:
    bot = await start_bot()
    await save_two(bot, tg, GROUP)
    fake_gateway.script(Answer(text="嗨～团团在呢！🐼", reasoning=THINK))
    tg.send_user_message(GROUP, BOB, "团团，今天开门吗？")  # no mention, no reply: called by name
    answer = (await bot_says(bot, tg, GROUP, 5))[4]
    assert answer.text == "嗨～团团在呢！🐼" and answer.reply_to is not None
    assert '<character_sheet name="团团">' in fake_gateway.last.body["messages"][0]["content"]
    tg.send_user_message(GROUP, BOB, "/character delete 团团", entities=[FakeTelegram.command_entity("/character")])
    refused = (await bot_says(bot, tg, GROUP, 6))[5]
    assert "Only 团团's owner" in refused.text
    assert await CharacterStore(bot.runtime.db).find(offer_key(tg, GROUP), "团团") is not None
    no_limit_broken(tg)
