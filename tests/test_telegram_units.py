"""The Telegram adapter's pure parts: rendering and splitting, reading updates, buttons,
arrival order, album gathering."""

from __future__ import annotations

import asyncio

from telegram import Bot, Message, MessageEntity

from adapters.telegram import keyboards, render
from adapters.telegram.albums import AlbumGatherer
from adapters.telegram.normalise import BotIdentity, clean_text, conversation_key, is_addressed, normalise
from bot.core.order import ArrivalOrder
from bot.platform.controls import Press
from bot.platform.surface import utf16_len
from tests.surfaces import copy_controls

ME = BotIdentity(42, "copy_helper_bot")
BOT = Bot("42:abc")


def message(text: str, *, chat: dict | None = None, entities: list[dict] | None = None, **extra) -> Message:
    data = {
        "message_id": 7,
        "date": 0,
        "chat": chat or {"id": -100, "type": "supergroup", "title": "G"},
        "from": {"id": 5, "is_bot": False, "first_name": "Bob", "last_name": "Li"},
        "text": text,
        **({"entities": entities} if entities else {}),
        **extra,
    }
    return Message.de_json(data, BOT)


def entity_text(text: str, e: MessageEntity) -> str:
    raw = text.encode("utf-16-le")
    return raw[e.offset * 2 : (e.offset + e.length) * 2].decode("utf-16-le")


# ---- rendering -------------------------------------------------------------------------------
def test_markdown_becomes_entities_with_utf16_offsets() -> None:
    [page] = render.markdown("😀😀 **粗体** and `code`")
    assert page.text == "😀😀 粗体 and code"
    kinds = {e.type: entity_text(page.text, e) for e in page.entities}
    assert kinds == {"bold": "粗体", "code": "code"}


def test_half_written_markdown_is_sent_plain() -> None:
    page = render.plain("a **half written `snippet")
    assert page.text == "a **half written `snippet" and page.entities == ()


def test_long_text_splits_at_paragraphs_and_sentences_within_4096_units() -> None:
    sentence = "这是一句带表情的话😀，说明拆分规则。"
    text = "\n\n".join(sentence * 30 for _ in range(12))
    pages = render.split(text, [])
    assert len(pages) > 1
    assert all(utf16_len(p.text) <= 4096 for p in pages)
    assert "".join(p.text for p in pages).replace("\n", "") == text.replace("\n", "")
    assert all(p.text.endswith("。") for p in pages)


def test_split_without_any_boundary_never_cuts_an_emoji_in_half() -> None:
    text = "😀" * 3000  # 6000 UTF-16 units, no spaces or punctuation
    pages = render.split(text, [])
    assert [utf16_len(p.text) for p in pages] == [4096, 6000 - 4096]
    assert "".join(p.text for p in pages) == text


def test_entities_crossing_a_split_are_clipped_into_both_pages() -> None:
    text = "a" * 4000 + "\n\n" + "b" * 200
    bold = MessageEntity("bold", 3990, 20)  # covers the end of page one and the start of page two
    one, two = render.split(text, [bold], limit=4096)
    assert one.text == "a" * 4000 and two.text == "b" * 200
    assert [(e.offset, e.length) for e in one.entities] == [(3990, 10)]
    assert [(e.offset, e.length) for e in two.entities] == [(0, 8)]  # 20 - 10 - the "\n\n"


def test_reasoning_is_an_expandable_blockquote_cut_to_size() -> None:
    [page] = render.markdown("**Done**", reasoning="想" * 5000)
    quote, bold = page.entities
    assert quote.type == MessageEntity.EXPANDABLE_BLOCKQUOTE and quote.offset == 0
    assert quote.length <= render.REASONING_LIMIT
    assert entity_text(page.text, bold) == "Done"


# ---- reading updates -------------------------------------------------------------------------
def test_group_addressing() -> None:
    mention = "@copy_helper_bot write a slogan"
    assert is_addressed(ME, message(mention, entities=[{"type": "mention", "offset": 0, "length": 16}]))
    assert is_addressed(ME, message("hey @Copy_Helper_Bot, hi"))  # no entities, any case
    assert not is_addressed(ME, message("we sell tea"))
    assert not is_addressed(ME, message("ask @copy_helper_bot_fan"))
    assert is_addressed(ME, message("/new", entities=[{"type": "bot_command", "offset": 0, "length": 4}]))
    command = [{"type": "bot_command", "offset": 0, "length": 14}]
    assert not is_addressed(ME, message("/new@other_bot", entities=command))
    bot_msg = {
        "message_id": 3,
        "date": 0,
        "chat": {"id": -100, "type": "supergroup"},
        "from": {"id": 42, "is_bot": True, "first_name": "Copy"},
        "text": "an answer",
    }
    assert is_addressed(ME, message("shorter please", reply_to_message=bot_msg))
    text_mention = message(
        "hey you",
        entities=[
            {"type": "text_mention", "offset": 4, "length": 3, "user": {"id": 42, "is_bot": True, "first_name": "C"}}
        ],
    )
    assert is_addressed(ME, text_mention)
    private = message("anything", chat={"id": 5, "type": "private", "first_name": "Bob"})
    assert is_addressed(ME, private)


def test_forum_topics_and_the_topic_root_message() -> None:
    forum = {"id": -300, "type": "supergroup", "title": "F", "is_forum": True}
    root = {
        "message_id": 9,
        "date": 0,
        "chat": forum,
        "from": {"id": 42, "is_bot": True, "first_name": "C"},
        "forum_topic_created": {"name": "Launch", "icon_color": 1},
    }
    msg = message("in a topic", chat=forum, message_thread_id=9, is_topic_message=True, reply_to_message=root)
    assert conversation_key(ME, msg).thread == "9"
    assert not is_addressed(ME, msg), "the topic's root message is not a reply to the bot"
    plain_reply = message("reply in a plain group", message_thread_id=4)
    assert conversation_key(ME, plain_reply).thread == ""


def test_text_cleaning_and_names() -> None:
    cmd = message("/style@copy_helper_bot xiaohongshu", entities=[{"type": "bot_command", "offset": 0, "length": 22}])
    assert clean_text(ME, cmd) == "/style xiaohongshu"
    brief = message(
        "/copy@copy_helper_bot\nspring tea, two lines", entities=[{"type": "bot_command", "offset": 0, "length": 21}]
    )
    assert clean_text(ME, brief) == "/copy spring tea, two lines", "a brief on the next line is kept whole"
    assert clean_text(ME, message("@copy_helper_bot, 写一句口号")) == "写一句口号"
    msg = normalise(ME, message("hi"))
    assert msg.author.name == "Bob Li" and msg.group and msg.key.chat == "-100" and msg.key.workspace == "42"


# ---- buttons ---------------------------------------------------------------------------------
def test_keyboard_carries_the_core_controls_encoded() -> None:
    controls = copy_controls(123456789, 3, "zh")
    markup = keyboards.markup(controls)
    assert markup is not None
    datas = [b.callback_data for row in markup.inline_keyboard for b in row]
    assert all(len(d.encode()) <= 64 for d in datas)
    presses = [Press.decode(d) for d in datas]
    assert presses[0] == Press("refine", 123456789, ("1", "shorter"))
    assert presses[-3:] == [
        Press.decode("regen:123456789"),
        Press.decode("fb:123456789:1"),
        Press.decode("fb:123456789:-1"),
    ]
    labels = [b.text for row in markup.inline_keyboard for b in row]
    assert labels[0] == "1 · 更短" and labels[-3:] == ["🔄 Regenerate", "👍", "👎"]
    assert len(markup.inline_keyboard) == 3 * 2 + 1  # six refinements per variant, three a row


def test_keyboard_json_is_the_keyboard_built_once_per_controls() -> None:
    controls = copy_controls(42, 2, "en")
    first = keyboards.markup_json(controls)
    again = keyboards.markup_json(copy_controls(42, 2, "en"))  # equal, not the same
    markup = keyboards.markup(controls)
    assert markup is not None and first == markup.to_json()
    assert again is first  # every edit of an answer repeats its keyboard: not rebuilt
    assert keyboards.markup_json(copy_controls(43, 2, "en")) != first
    assert keyboards.markup_json(()) is None


# ---- arrival order and albums ----------------------------------------------------------------
async def test_messages_are_stored_in_arrival_order_whatever_their_preparation_takes() -> None:
    order = ArrivalOrder()
    stored: list[str] = []

    async def arrive(name: str, prepare: float, skip: bool = False) -> None:
        ticket = order.ticket("chat")
        await asyncio.sleep(prepare)  # a slow download for the first one
        if skip:
            ticket.drop()
            return

        async def store() -> None:
            stored.append(name)

        await ticket.turn(store)

    await asyncio.gather(arrive("photo", 0.3), arrive("album item", 0.0, skip=True), arrive("text", 0.0))
    assert stored == ["photo", "text"]


async def test_album_items_are_gathered_until_the_window_passes() -> None:
    gatherer = AlbumGatherer(window=0.1)

    def item(n: int) -> Message:
        return message("" if n != 2 else "caption", media_group_id="g1", message_id=n)

    async def late(n: int, delay: float):
        await asyncio.sleep(delay)
        return await gatherer.gather(item(n))

    first, second, third = await asyncio.gather(late(1, 0), late(2, 0.06), late(3, 0.12))
    assert second is None and third is None
    assert [m.message_id for m in first] == [1, 2, 3], "each item resets the window"
