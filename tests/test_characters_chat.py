"""Characters through the real core (ChatService, store, prompt hooks, the metered gateway
against the fake gateway): importing a card with one tap, the voice in every prompt at the
same bytes, /new keeping it, drafts, copy in the character's voice, names called in a group,
permissions in a group, export without file support."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from bot.characters.cards import export_json, read_card, to_card_v2
from bot.characters.character_feature import voice_for_task
from bot.characters.offers import PRESS
from bot.characters.voice_prompt import EXAMPLE_MARK, render
from bot.platform.controls import Button, Click, Press
from bot.platform.messages import Attachment, Author, ConversationKey, IncomingMessage
from bot.process.runtime import build_runtime
from bot.store.characters import CharacterStore
from tests.fakes.gateway import Answer
from tests.surfaces import RecordingSurface
from tests.test_characters_cards import MOCHI, raw

DM = ConversationKey("console", "local", "alice")
GROUP = ConversationKey("telegram", "bot1", "-100200")
ALICE, BOB, CAROL, ADMIN = Author("1", "Alice"), Author("2", "Bob"), Author("3", "Carol"), Author("99", "Ada")


@pytest.fixture
async def rt(make_settings):
    runtime = await build_runtime(
        make_settings(BOT_ADMINS="99", BOT_CONTEXT_TOKENS=6000, BOT_MAX_TOKENS=1000), migrate=False
    )
    yield runtime
    await runtime.close()


class Chat:
    """Someone writing into one conversation of the core, and what they see."""

    def __init__(self, rt, key: ConversationKey, *, group: bool = False) -> None:
        self.rt, self.key, self.group = rt, key, group
        self.surface = RecordingSurface()
        self.n = 0

    async def say(
        self, text: str, author: Author = ALICE, *, files: tuple[Attachment, ...] = (), addressed: bool = True
    ) -> list[str]:
        before = len(self.surface.order)
        self.n += 1
        await self.rt.service.handle(
            IncomingMessage(
                key=self.key,
                author=author,
                text=text,
                message_id=f"m{self.n}",
                attachments=list(files),
                addressed=addressed,
                group=self.group,
            ),
            self.surface,
        )
        await self.rt.service.drain()
        return self.surface.texts[before:]

    def buttons(self) -> list[Button]:
        return [b for w in self.surface.writes for row in w.controls if isinstance(row, tuple) for b in row]

    def button(self, label: str) -> Button:
        return [b for b in self.buttons() if label in b.label][-1]

    async def tap(self, button: Button, author: Author = ALICE) -> str:
        before = len(self.surface.order)
        ack = await self.rt.service.click(Click(button.press.encode(), author, self.key), self.surface)
        await self.rt.service.drain()
        return ack.text + " | " + " ".join(self.surface.texts[before:])


def card_file(name: str = "tuantuan.json") -> Attachment:
    return Attachment(raw("mascot_zh_v3.json"), "application/json", name)


def mochi_file() -> Attachment:
    return Attachment(json.dumps(to_card_v2(MOCHI), ensure_ascii=False).encode(), "application/json", "mochi.json")


def prefix(body: dict, n: int) -> str:
    return json.dumps(body["messages"][: 1 + n], ensure_ascii=False)


# --- import, use, the voice ---------------------------------------------------------------


async def test_a_card_file_is_offered_saved_with_one_tap_and_taken_up(rt, fake_gateway) -> None:
    chat = Chat(rt, DM)
    shown = await chat.say("", files=(card_file(),))
    assert fake_gateway.requests == [], "a card is not sent to the model"
    assert "Import this character?" in shown[0] and "团团" in shown[0] and "tokens in every prompt" in shown[0]
    assert not await CharacterStore(rt.db).usable(DM), "nothing is saved before the tap"
    save = chat.button("Save & use")
    assert save.press.kind == PRESS and len(save.press.encode()) <= 64
    result = await chat.tap(save)
    assert result.startswith("Saved.")
    [saved] = await CharacterStore(rt.db).usable(DM)
    assert saved.name == "团团" and saved.owner == ALICE.id
    assert "Speaking as **团团**" in result and "嗨嗨～Alice！团团来啦🐼🍵" in result, "the first message is shown"
    # The first message is the character's first line of the conversation.
    fake_gateway.script(Answer(text="当当当～本周新品是桂花乌龙奶盖！🌼", reasoning="in voice"))
    await chat.say("新品是什么？")
    messages = fake_gateway.last.body["messages"]
    rendered = render(saved.character)
    assert messages[0]["content"].endswith(rendered.system_block)
    assert messages[1 : 1 + len(rendered.examples)] == list(rendered.examples)
    assert messages[1]["content"].startswith(EXAMPLE_MARK)
    assert messages[-2] == {"role": "assistant", "content": "嗨嗨～Alice！团团来啦🐼🍵 今天想喝点什么呀？"}
    assert messages[-1]["content"].startswith("新品是什么？") and rendered.post_history in messages[-1]["content"]
    # A second tap on the old offer saves nothing twice.
    assert "saved here already" in await chat.tap(chat.button("Save"))
    assert len(await CharacterStore(rt.db).usable(DM)) == 1


async def test_50_turns_carry_the_card_at_the_same_bytes_and_trimming_never_cuts_it(rt, fake_gateway) -> None:
    """BOT_CONTEXT_TOKENS=6000: the history outgrows the budget and is trimmed several times."""
    chat = Chat(rt, DM)
    await chat.say("", files=(card_file(),))
    await chat.tap(chat.button("Save & use"))
    saved = (await CharacterStore(rt.db).usable(DM))[0]
    n_examples = len(render(saved.character).examples)
    lines = ["门店几点开门？", "会员怎么积分？", "新品好喝吗", "你喜欢什么茶"]
    for turn in range(50):
        answer = f"第{turn}次回答～团团认真回答问题，字数多一点好测试裁剪。" * 4
        fake_gateway.script(Answer(text=answer, reasoning="ok"))
        await chat.say(f"{lines[turn % 4]}（第{turn}条消息，多写几个字让历史变长一点点）")
    bodies = [r.body for r in fake_gateway.requests]
    assert len(bodies) == 50
    prefixes = {prefix(b, n_examples) for b in bodies}
    assert len(prefixes) == 1, "system prompt and examples: identical bytes on every one of the 50 turns"
    stable = len(prefixes.pop().encode())
    assert stable > 2_000
    # The history was trimmed (it would need far more than the budget) but never the card.
    first_turn_messages = len(bodies[0]["messages"])
    assert all(len(b["messages"]) < first_turn_messages + 2 * 49 for b in bodies[-5:])
    assert "会员怎么积分？（第1条" not in json.dumps(bodies[-1]["messages"], ensure_ascii=False)
    for body in bodies:
        assert body["messages"][-1]["role"] == "user" and "第" in body["messages"][-1]["content"]
    # Between two trims, consecutive prompts share everything up to the newest message.
    same = sum(1 for a, b in zip(bodies, bodies[1:]) if b["messages"][: len(a["messages"]) - 1] == a["messages"][:-1])
    assert same >= 40, same
    print(
        f"\n50 turns: one {stable:,}-byte prefix (system + {n_examples} example messages) on every turn; "
        f"{same}/49 consecutive prompts extend the previous one"
    )


async def test_new_keeps_the_character_and_off_ends_it(rt, fake_gateway) -> None:
    chat = Chat(rt, DM)
    await chat.say("", files=(mochi_file(),))
    await chat.tap(chat.button("Save & use"))
    assert "Started a new conversation" in (await chat.say("/new"))[0]
    fake_gateway.script(Answer(text="mochi-mochi~ 🍡", reasoning="ok"))
    await chat.say("who are you?")
    first = fake_gateway.last.body["messages"]
    assert '<character_sheet name="Mochi">' in first[0]["content"], "the card survives /new"
    assert [m["content"] for m in first if m["role"] != "system" and EXAMPLE_MARK not in m["content"]][-1].startswith(
        "who are you?"
    )
    assert "Back to my own voice" in (await chat.say("/character off"))[0]
    await chat.say("and now?")
    assert "character_sheet" not in json.dumps(fake_gateway.last.body["messages"])


async def test_lore_goes_on_the_newest_message_only(rt, fake_gateway) -> None:
    chat = Chat(rt, DM)
    await chat.say("", files=(mochi_file(),))
    await chat.tap(chat.button("Save & use"))
    fake_gateway.script(*(Answer(text=f"answer {n}~", reasoning="ok") for n in range(3)))
    await chat.say("do you like red bean?")
    asked = fake_gateway.last.body["messages"]
    assert "Red bean is Mochi's favourite filling." in asked[-1]["content"]
    await chat.say("ok")
    await chat.say("and the weather?")  # the lore's key is out of its scan depth (3 messages) now
    later = fake_gateway.last.body["messages"]
    assert "Red bean is Mochi's favourite filling." not in json.dumps(later, ensure_ascii=False), (
        "volatile lore never stays in history"
    )
    assert {"role": "user", "content": "do you like red bean?"} in later
    assert "Mochi Bakery opened in 2019." in later[0]["content"], "always-on lore is in the prefix"


async def test_a_copy_request_is_written_in_the_characters_voice(rt, fake_gateway) -> None:
    chat = Chat(rt, DM)
    await chat.say("", files=(mochi_file(),))
    await chat.tap(chat.button("Save & use"))
    variants = {
        "variants": [
            {"title": f"Rise & shine {i}~", "body": "Fresh mochi-mochi~ 🍡", "hashtags": ["mochi"]} for i in (1, 2, 3)
        ]
    }
    fake_gateway.script(Answer(text=json.dumps(variants), reasoning="in voice"))
    shown = await chat.say("/copy a post for our new red bean mochi")
    body = fake_gateway.last.body
    assert '<character_sheet name="Mochi">' in body["messages"][0]["content"]
    assert voice_for_task("Mochi") in body["messages"][-1]["content"]
    assert "Rise & shine 1~" in shown[-1]


# --- drafts -----------------------------------------------------------------------------------


def drafted(**overrides: object) -> str:
    card = {
        "identity": "团团的表弟，山茶记的熊猫实习生",
        "personality": "害羞、认真",
        "background": "刚来到山茶记的第一周。",
        "scenario": "粉丝群",
        "speech_style": {"vocabulary": "口语", "catchphrases": ["嗯嗯！"], "punctuation": "～", "emoji": "🐼"},
        "boundaries": ["不承诺折扣"],
        "example_dialogue": [[{"speaker": "user", "text": "你好"}, {"speaker": "char", "text": "你、你好～嗯嗯！🐼"}]],
        "first_message": "大家好，我是圆圆～🐼",
        "language": "zh",
        "tags": ["吉祥物"],
    }
    card.update(overrides)
    return json.dumps(card, ensure_ascii=False)


async def test_character_new_drafts_a_card_retries_once_and_saves_on_a_tap(rt, fake_gateway) -> None:
    chat = Chat(rt, DM)
    fake_gateway.script(
        Answer(text='{"identity": "half a card', reasoning="draft"), Answer(text=drafted(), reasoning="draft again")
    )
    shown = await chat.say("/character new 圆圆: 团团的表弟，害羞的熊猫实习生")
    first, retry = (r.body for r in fake_gateway.requests)
    assert first["response_format"]["json_schema"]["name"] == "character_card"
    assert "could not be used" in retry["messages"][-1]["content"]
    assert "A draft of 圆圆" in shown[-1] and "你、你好～嗯嗯！🐼" in shown[-1] and "{" not in shown[-1]
    assert not await CharacterStore(rt.db).usable(DM)
    assert (await chat.tap(chat.button("✅ Save"))).startswith("Saved.")
    [saved] = await CharacterStore(rt.db).usable(DM)
    assert (saved.name, saved.owner, saved.character.creator) == ("圆圆", ALICE.id, "Alice")
    turns = [r.body for r in fake_gateway.requests]
    assert len(turns) == 2, "saving calls no model"


async def test_a_draft_that_fails_twice_says_so_without_json(rt, fake_gateway) -> None:
    chat = Chat(rt, DM)
    fake_gateway.script(Answer(text="Sure! Here is a character.", reasoning="x"), Answer(text="[1, 2]", reasoning="x"))
    shown = await chat.say("/character new Pip: a cheerful robot barista")
    assert "could not be used" in shown[-1] and "[1, 2]" not in shown[-1]
    assert not [b for b in chat.buttons() if b.press.kind == PRESS]


async def test_a_draft_counts_against_the_quota(rt, fake_gateway, make_settings) -> None:
    from bot.usage.allowance import parse_allowance
    from bot.usage.periods import Period
    from bot.usage.quotas import Scope as QuotaScope

    await rt.service.ops.quotas.set_limit(
        QuotaScope.USER, "console:1", Period.DAY, parse_allowance("10 tokens"), by="test"
    )
    chat = Chat(rt, DM)
    fake_gateway.script(Answer(text=drafted(), reasoning="draft", prompt_tokens=500, completion_tokens=400))
    await chat.say("/character new 圆圆: 团团的表弟")
    shown = await chat.say("/character new 豆豆: 另一个")
    assert len(fake_gateway.requests) == 1, "the second draft is refused before the model"
    assert "limit" in shown[-1]


# --- groups: names, permissions -------------------------------------------------------------


async def setup_group(rt) -> tuple[Chat, object]:
    chat = Chat(rt, GROUP, group=True)
    await chat.say("", files=(card_file(),))
    await chat.tap(chat.button("Save & use"))
    await chat.say("", files=(mochi_file(),))
    await chat.tap(chat.button("✅ Save"))
    return chat, CharacterStore(rt.db)


async def test_in_a_group_a_character_is_called_by_name(rt, fake_gateway) -> None:
    chat, _ = await setup_group(rt)
    fake_gateway.script(Answer(text="嗨～", reasoning="ok"), Answer(text="mochi-mochi~", reasoning="ok"))
    assert await chat.say("大家今天好", BOB, addressed=False) == [], "chatter stays chatter"
    assert fake_gateway.requests == []
    await chat.say("团团，门店几点开门？", BOB, addressed=False)
    assert '<character_sheet name="团团">' in fake_gateway.last.body["messages"][0]["content"]
    await chat.say("Mochi, what's your favourite filling?", CAROL, addressed=False)
    called = fake_gateway.last.body["messages"]
    assert '<character_sheet name="Mochi">' in called[0]["content"], "the one called answers, not the active one"
    assert "团团" not in called[0]["content"]
    assert "[Carol] Mochi, what's your favourite filling?" in called[-1]["content"]


async def test_in_a_group_only_the_owner_or_an_admin_edits_deletes_or_switches(rt, fake_gateway) -> None:
    chat, characters = await setup_group(rt)
    # Bob is a member, not the owner: he may look and export, not change.
    assert "Only 团团's owner" in (await chat.say("/character edit 团团 personality: 暴躁", BOB))[0]
    assert "Only Mochi's owner" in (await chat.say("/character delete Mochi", BOB))[0]
    assert "only 团团's owner or an admin can switch" in (await chat.say("/character off", BOB))[0]
    assert "only 团团's owner or an admin can switch" in (await chat.say("/character use Mochi", BOB))[0]
    assert "团团" in (await chat.say("/character show", BOB))[0]
    assert len(await characters.usable(GROUP)) == 2
    # The owner edits; an admin deletes.
    assert "Updated 团团's personality" in (await chat.say("/character edit 团团 personality: 元气满满", ALICE))[0]
    found = await characters.find(GROUP, "团团")
    assert found is not None and found.character.personality == "元气满满" and found.revision == 2
    assert "Deleted **Mochi**" in (await chat.say("/character delete Mochi", ADMIN))[0]
    assert [s.name for s in await characters.usable(GROUP)] == ["团团"]
    # Sizes are capped: an edit that makes the card too big is refused, the card unchanged.
    too_long = "很长的背景。" * 3000
    assert "at most" in (await chat.say(f"/character edit 团团 background: {too_long}", ALICE))[0]
    assert (await characters.find(GROUP, "团团")).revision == 2  # type: ignore[union-attr]


async def test_only_whoever_sent_a_card_or_an_admin_saves_it(rt, fake_gateway) -> None:
    chat = Chat(rt, GROUP, group=True)
    await chat.say("", ALICE, files=(mochi_file(),))
    assert "Only Alice or an admin can save" in await chat.tap(chat.button("✅ Save"), BOB)
    assert not await CharacterStore(rt.db).usable(GROUP)
    assert (await chat.tap(chat.button("✅ Save"), ADMIN)).startswith("Saved.")
    [saved] = await CharacterStore(rt.db).usable(GROUP)
    assert saved.owner == ALICE.id, "the card is its sender's"


async def test_a_forged_press_for_another_chat_is_stale(rt, fake_gateway) -> None:
    chat = Chat(rt, DM)
    await chat.say("", files=(mochi_file(),))
    offer = chat.button("✅ Save").press
    other = Chat(rt, ConversationKey("console", "local", "mallory"))
    ack = await rt.service.click(Click(offer.encode(), Author("m", "Mallory"), other.key), other.surface)
    assert ack.text == "This button no longer works."
    assert not await CharacterStore(rt.db).usable(DM) and not await CharacterStore(rt.db).usable(other.key)
    bogus = await rt.service.click(Click(Press(PRESS, offer.turn_id, ("card", "x")).encode(), ALICE, DM), chat.surface)
    assert bogus.text == "This button no longer works."


async def test_a_thread_started_later_speaks_as_the_chats_character(rt, fake_gateway) -> None:
    """Slack-style threads: /character use in one thread sets the channel's character for new threads."""
    first = Chat(rt, ConversationKey("slack", "T1", "C1", "100.1"), group=True)
    await first.say("", files=(mochi_file(),))
    await first.tap(first.button("Save & use"))
    later = Chat(rt, ConversationKey("slack", "T1", "C1", "200.2"), group=True)
    await later.say("hello there")
    assert '<character_sheet name="Mochi">' in fake_gateway.last.body["messages"][0]["content"]


# --- export, show, list --------------------------------------------------------------------------


async def test_export_falls_back_to_a_code_block_where_files_cant_be_sent(rt, fake_gateway) -> None:
    chat = Chat(rt, DM)
    await chat.say("", files=(mochi_file(),))
    await chat.tap(chat.button("✅ Save"))
    listed = (await chat.say("/character"))[0]
    assert "**Mochi**" in listed and "/character use NAME" in listed
    [shown] = await chat.say("/character export Mochi")
    assert "couldn't send a file here" in shown
    body = shown.split("```json\n", 1)[1].rsplit("\n```", 1)[0]
    assert json.loads(body) == json.loads(export_json((await CharacterStore(rt.db).find(DM, "Mochi")).character))
    again = read_card(body.encode(), "Mochi.json").character  # type: ignore[union-attr]
    assert again.name == "Mochi" and again.speech.catchphrases == MOCHI.speech.catchphrases


async def test_usage_errors_are_answered_without_the_model(rt, fake_gateway) -> None:
    chat = Chat(rt, DM)
    checks: dict[str, Callable[[str], bool]] = {
        "/character use Nobody": lambda t: "no character called “Nobody”" in t,
        "/character new": lambda t: t.startswith("Usage: /character new NAME"),
        "/character frobnicate": lambda t: "I don't know “frobnicate”" in t,
        "/character edit colour: blue": lambda t: "no field" in t,
        "/character save": lambda t: "no character waiting" in t,
        "/scene Mochi: alone": lambda t: "at least two characters" in t,
        "/character share Mochi": lambda t: "Only an admin" in t,
    }
    for text, ok in checks.items():
        [answer] = await chat.say(text)
        assert ok(answer), (text, answer)
    assert fake_gateway.requests == []


async def test_where_nothing_can_be_tapped_character_save_keeps_the_newest_offer(rt, fake_gateway) -> None:
    chat = Chat(rt, DM)
    fake_gateway.script(Answer(text=drafted(), reasoning="draft"))
    await chat.say("/character new 圆圆: 团团的表弟")
    [saved_text] = await chat.say("/character save")
    assert saved_text.startswith("Saved **圆圆** for this chat.")
    [listed] = await chat.say("/character")
    assert "**圆圆** — 团团的表弟，山茶记的熊猫实习生" in listed
    [shown] = await chat.say("/character show 圆圆")
    assert "tokens in every prompt" in shown and "yours" in shown
