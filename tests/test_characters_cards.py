"""Character Cards in and out: V1, V2 and V3 as JSON and PNG (real export shapes, written by
hand from the specs), our V2 export round-tripping, and hostile files refused with a reason."""

from __future__ import annotations

import base64
import io
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from bot.characters.cards import (
    CardError,
    card_to_character,
    export_json,
    export_png,
    looks_like_card,
    read_card,
    to_card_v2,
)
from bot.characters.character import (
    CardLimits,
    Character,
    CharacterInvalid,
    ExampleLine,
    LoreEntry,
    SpeechStyle,
    clean_text,
    fit,
    normalize_name,
    prompt_tokens,
)
from tests import pngs

CARDS = Path(__file__).parent / "corpus" / "cards"


def load(name: str) -> dict:
    return json.loads((CARDS / name).read_text(encoding="utf-8"))


def raw(name: str) -> bytes:
    return (CARDS / name).read_bytes()


MOCHI = Character(
    name="Mochi",
    identity="A sleepy rice-cake mascot of Mochi Bakery",
    personality="lazy, warm, loves puns",
    speech=SpeechStyle(
        "soft, bakery words (knead, proof, rise)",
        ("mochi-mochi~", "let it rise!"),
        "tildes instead of full stops~",
        "🍡 once per message",
    ),
    background="Born in the proofing drawer of the first Mochi Bakery in 2019.",
    scenario="The bakery's fan group.",
    boundaries=("never insults a fan", "never promises discounts"),
    examples=(
        (ExampleLine("user", "hi {{char}}"), ExampleLine("char", "hi {{user}}~ mochi-mochi~ 🍡")),
        (ExampleLine("char", "*yawns*\nfive more minutes~"),),
    ),
    first_message="Mochi rolled out of the drawer~ 🍡",
    alternate_greetings=("Fresh out of the oven~",),
    language="en",
    nickname="Mo",
    system_prompt="{{original}} Keep it short.",
    post_history_instructions="Stay fluffy.",
    tags=("mascot", "bakery"),
    creator="bakery team",
    creator_notes="for the fan group",
    character_version="2",
    lore=(
        LoreEntry(keys=("red bean",), content="Red bean is Mochi's favourite filling.", insertion_order=5),
        LoreEntry(keys=(), content="Mochi Bakery opened in 2019.", constant=True),
    ),
    lore_scan_depth=3,
    extras={"other_tool": {"x": 1}},
)


# --- real-format cards ---


def test_sillytavern_v2_json_maps_every_field() -> None:
    card = read_card(raw("sillytavern_v2.json"), "bao.json")
    c = card.character
    assert card.spec == "chara_card_v2" and card.avatar is None and card.notes == ()
    assert c.name == "Captain Bao"
    # description: a short first line is the identity, the rest the background
    assert c.identity == "{{char}} is the steamed-bun pirate captain of the Golden Dumpling."
    assert c.background.startswith("{{char}} sailed the Seven Steamers")
    # mes_example: <START>-separated dialogues, continuation lines kept, a dialogue opening with the character
    assert c.examples == (
        (
            ExampleLine("user", "What's for dinner, Captain?"),
            ExampleLine(
                "char",
                "*lifts the lid with a flourish* Pork buns, me hearty! Fresh as a sea breeze.\nAnd twice as fluffy!",
            ),
        ),
        (ExampleLine("char", "*squints at the horizon* Storm's comin'. Batten the buns!"),),
    )
    assert c.system_prompt == "{{original}}\nWrite {{char}}'s actions between asterisks."
    assert c.post_history_instructions == "{{original}} Keep replies under 80 words."
    assert len(c.alternate_greetings) == 2 and c.tags == ("pirate", "food", "mascot")
    assert (c.creator, c.character_version, c.lore_scan_depth) == ("dimsum_studio", "1.2", 3)
    ship, storm, vinegar = c.lore
    assert ship.keys == ("Golden Dumpling", "ship") and ship.priority == 10 and ship.position == "before_char"
    assert storm.selective and storm.secondary_keys == ("bun", "buns")
    assert not vinegar.enabled  # kept (for export), never triggered
    assert c.extras["depth_prompt"]["depth"] == 4  # other tools' extensions kept, opaque


def test_chinese_v3_card_with_lorebook_and_extensions() -> None:
    card = read_card(raw("mascot_zh_v3.json"), "tuantuan.json")
    c = card.character
    assert card.spec == "chara_card_v3"
    assert (c.name, c.nickname) == ("团团", "团子")
    assert c.identity.startswith("{{char}}是「山茶记」") and "雅安" in c.background
    assert c.examples[1] == (
        ExampleLine("user", "你是机器人吗"),
        ExampleLine("char", "团团是山茶记的AI小熊猫哦～有啥想问的尽管说！🐼"),
    )  # full-width colons
    assert card.notes == ("group-only greetings were not imported",)
    by_name = {e.name: e for e in c.lore}
    assert by_name["底线"].always_on and by_name["底线"].decorators == ("depth 0",)
    assert by_name["底线"].body == "团团不会透露任何员工的个人信息，也不会承诺具体的退款金额。"
    assert by_name["隐藏菜单"].never_triggers and by_name["停售"].never_triggers
    assert by_name["门店"].use_regex and by_name["会员积分"].selective
    assert c.extras["regex_scripts"][0]["scriptName"] == "去掉星号"
    assert "assets" not in c.extras and not hasattr(c, "assets")


def test_v1_flat_card_and_legacy_placeholders() -> None:
    card = read_card(raw("v1_flat.json"))
    assert card.spec == "v1"
    c = card.character
    assert c.first_message == "*flutters* A letter for {{user}}?"  # <USER> → {{user}}
    assert c.examples == (
        (ExampleLine("user", "Who are you?"), ExampleLine("char", "*folds a wing* Pip, at your service.")),
    )
    assert c.identity == "" and c.background == "Pip is a tiny paper crane who delivers letters."


def test_png_with_both_chunks_prefers_v3_whatever_the_chunk_order() -> None:
    v3 = load("mascot_zh_v3.json")
    v2 = load("sillytavern_v2.json")
    for after in (
        (pngs.text("chara", pngs.card_b64(v2)), pngs.text("ccv3", pngs.card_b64(v3))),
        (pngs.text("ccv3", pngs.card_b64(v3)), pngs.text("chara", pngs.card_b64(v2))),
    ):
        card = read_card(pngs.png(after=after), "card.png")
        assert card.spec == "chara_card_v3" and card.character.name == "团团"
        assert card.avatar is not None and Image.open(io.BytesIO(card.avatar)).size == (4, 4)


def test_png_with_v3_json_in_the_chara_chunk_reads_the_spec_not_the_chunk_name() -> None:
    card = read_card(pngs.png(before=(pngs.text("chara", pngs.card_b64(load("mascot_zh_v3.json"))),)))
    assert card.spec == "chara_card_v3" and card.character.nickname == "团子"


def test_png_card_in_ztxt_and_itxt_chunks() -> None:
    v2 = load("sillytavern_v2.json")
    assert read_card(pngs.png(after=(pngs.ztext("chara", pngs.card_b64(v2)),))).character.name == "Captain Bao"
    itxt = pngs.itext("chara", json.dumps(load("mascot_zh_v3.json"), ensure_ascii=False), compressed=True)
    assert read_card(pngs.png(after=(itxt,))).character.name == "团团"  # raw UTF-8 JSON, compressed


def test_png_card_whose_tEXt_holds_raw_utf8_json() -> None:
    body = json.dumps(load("mascot_zh_v3.json"), ensure_ascii=False).encode("utf-8")
    chunk = pngs.chunk(b"tEXt", b"chara\0" + body)  # not base64: some tools write the JSON itself
    assert read_card(pngs.png(after=(chunk,))).character.name == "团团"


def test_a_damaged_chunk_does_not_hide_a_good_one() -> None:
    bad = pngs.text("ccv3", "!!!not base64!!!")
    good = pngs.text("chara", pngs.card_b64(load("sillytavern_v2.json")))
    assert read_card(pngs.png(after=(bad, good))).character.name == "Captain Bao"


# --- export ---


def test_our_card_round_trips_through_v2_json() -> None:
    data = export_json(MOCHI)
    obj = json.loads(data)
    assert obj["spec"] == "chara_card_v2" and obj["spec_version"] == "2.0"
    assert obj["name"] == obj["data"]["name"] == "Mochi"  # V1 fields at the top, for old readers
    assert obj["data"]["mes_example"].startswith("<START>\n{{user}}: hi {{char}}\n{{char}}: ")
    # Tools without our extension still get the voice and the limits from the description.
    assert "Catchphrases: “mochi-mochi~” / “let it rise!”" in obj["data"]["description"]
    assert "- never promises discounts" in obj["data"]["description"]
    assert obj["data"]["character_book"]["entries"][1]["constant"] is True
    card = read_card(data, "mochi.json")
    assert card.character == MOCHI and card.notes == ()


def test_our_card_round_trips_through_a_v2_png_with_its_avatar() -> None:
    avatar = io.BytesIO()
    Image.new("RGB", (64, 96), (200, 30, 90)).save(avatar, format="PNG")
    data = export_png(MOCHI, avatar.getvalue())
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (64, 96) and img.getpixel((10, 10)) == (200, 30, 90)
        assert set(img.text) == {"chara"}
        assert json.loads(base64.b64decode(img.text["chara"]))["spec"] == "chara_card_v2"
    card = read_card(data, "mochi.png")
    assert card.character == MOCHI and card.spec == "chara_card_v2"
    # Without an avatar: a placeholder picture, still a card.
    assert read_card(export_png(MOCHI)).character == MOCHI


def test_imported_real_cards_survive_our_export() -> None:
    for name in ("mascot_zh_v3.json", "sillytavern_v2.json", "v1_flat.json"):
        first = read_card(raw(name)).character
        assert read_card(export_json(first)).character == first, name
        assert read_card(export_png(first)).character == first, name


def test_a_reimported_png_keeps_only_our_chunk() -> None:
    card = read_card(
        pngs.png(
            after=(
                pngs.text("chara", pngs.card_b64(load("sillytavern_v2.json"))),
                pngs.text("ccv3", pngs.card_b64(load("mascot_zh_v3.json"))),
            )
        )
    )
    assert card.avatar is not None
    with Image.open(io.BytesIO(card.avatar)) as img:
        img.load()
        assert "chara" not in img.text and "ccv3" not in img.text  # the stored avatar carries no card
    with Image.open(io.BytesIO(export_png(card.character, card.avatar))) as img:
        img.load()
        assert set(img.text) == {"chara"}


_plain = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters=":：<>{}\u2028\u2029"), max_size=40
).map(clean_text)
_line = _plain.map(lambda t: " ".join(t.split()))
_items = st.lists(_line.filter(bool), max_size=3, unique=True).map(tuple)


@st.composite
def characters(draw: st.DrawFn) -> Character:
    name = draw(_line.map(normalize_name).filter(bool))
    dialogues = draw(
        st.lists(
            st.lists(st.tuples(st.sampled_from(["user", "char"]), _plain.filter(bool)), min_size=1, max_size=3),
            max_size=2,
        )
    )
    lore = draw(
        st.lists(
            st.builds(
                LoreEntry,
                keys=_items.filter(bool),
                content=_plain.filter(lambda t: bool(t) and not t.startswith("@@")),
                insertion_order=st.integers(0, 500),
                priority=st.integers(0, 9),
                selective=st.booleans(),
                enabled=st.booleans(),
                name=_line,
            ),
            max_size=3,
        )
    )
    return Character(
        name=name,
        identity=draw(_line),
        personality=draw(_plain),
        speech=SpeechStyle(draw(_plain), draw(_items), draw(_plain), draw(_plain)),
        background=draw(_plain),
        scenario=draw(_plain),
        boundaries=draw(_items),
        examples=tuple(tuple(ExampleLine(s, t) for s, t in d) for d in dialogues),
        first_message=draw(_plain),
        alternate_greetings=draw(_items),
        language=draw(_line)[:32],
        nickname=draw(_line)[:64],
        system_prompt=draw(_plain),
        post_history_instructions=draw(_plain),
        tags=draw(_items),
        creator=draw(_line),
        creator_notes=draw(_plain),
        character_version=draw(_line),
        lore=tuple(lore),
        lore_scan_depth=draw(st.integers(1, 10)),
        extras=draw(st.dictionaries(st.sampled_from(["a", "b", "fav"]), st.integers() | _line, max_size=2)),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(characters())
def test_any_character_round_trips_through_storage_and_a_v2_card(character: Character) -> None:
    assert Character.from_dict(json.loads(json.dumps(character.to_dict()))) == character
    assert card_to_character(json.loads(json.dumps(to_card_v2(character))))[0] == character


# --- hostile files ---


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"\xff\xfe\x00garbage", "neither a PNG nor UTF-8 JSON"),
        (b"[1, 2, 3]", "not a character card"),
        (b'{"spec": "chara_card_v2", "data": {"name": "X", ', "not valid JSON"),
        (b"{" * 100_000, "not valid JSON"),
        (b'{"hello": "world"}', "not a character card"),
        (b'{"spec": "chara_card_v2", "data": {"name": "  "}}', "has no name"),
        (b"PK\x03\x04" + b"\0" * 100, "CHARX"),
    ],
)
def test_unreadable_json_files_get_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(CardError, match=reason):
        read_card(data)


def test_deeply_nested_json_is_refused_not_crashing() -> None:
    with pytest.raises(CardError, match="nested too deeply"):
        read_card(b'{"data": ' + b"[" * 200_000 + b"]" * 200_000 + b"}")


@pytest.mark.parametrize(
    ("chunks", "reason"),
    [
        ((), "without a character card"),
        ((pngs.text("chara", "%%%% not base64 %%%%"),), "not valid base64"),
        ((pngs.text("chara", base64.b64encode(b"\xff\xfe\xfd").decode()),), "not UTF-8"),
        ((pngs.text("chara", base64.b64encode(b'{"name": "X"').decode()),), "not valid JSON"),
        ((pngs.text("ccv3", base64.b64encode(b'{"hello": 1}').decode()),), "holds no character card"),
    ],
)
def test_unreadable_png_cards_get_a_reason(chunks: tuple[bytes, ...], reason: str) -> None:
    with pytest.raises(CardError, match=reason):
        read_card(pngs.png(after=chunks), "x.png")


def test_a_png_cut_short_keeps_what_came_before_the_cut() -> None:
    whole = pngs.png(before=(pngs.text("chara", pngs.card_b64(load("sillytavern_v2.json"))),))
    cut = whole[: whole.index(b"IDAT") + 20]
    assert read_card(cut).character.name == "Captain Bao"
    with pytest.raises(CardError, match="without a character card"):
        read_card(whole[: whole.index(b"tEXt") + 50])  # cut inside the card chunk


def test_an_image_bomb_header_costs_nothing_and_keeps_the_card() -> None:
    chunks = (pngs.text("chara", pngs.card_b64(load("sillytavern_v2.json"))),)
    for side in (100_000, 5_000):  # beyond Pillow's bomb limit; beyond our avatar limit
        started = time.perf_counter()
        card = read_card(pngs.png(side, side, after=chunks, idat=b"\0" * 64), "bomb.png")
        assert time.perf_counter() - started < 2.0
        assert card.character.name == "Captain Bao" and card.avatar is None
        assert any("picture was not kept" in note for note in card.notes)


def test_files_over_the_size_limits_are_refused_before_parsing() -> None:
    with pytest.raises(CardError, match="MB; PNG cards up to 20 MB"):
        read_card(pngs.png(after=(pngs.chunk(b"tEXt", b"junk\0" + b"a" * (21 * 1024 * 1024)),)))
    with pytest.raises(CardError, match="MB; JSON cards up to 8 MB"):
        read_card(b'{"name": "' + b"a" * (9 * 1024 * 1024) + b'"}')


def _megabyte_card() -> dict:
    """Like a real ~1 MB Chinese V3 export: mostly lorebook and extensions."""
    card = load("mascot_zh_v3.json")
    filler = "山茶记的每一片茶叶都来自高山茶园，经过十二道工序精心制作，" * 6
    card["data"]["character_book"]["entries"] = [
        {
            "keys": [f"关键词{i}"],
            "content": f"条目{i}：{filler}",
            "enabled": True,
            "insertion_order": i,
            "extensions": {"depth": 4},
        }
        for i in range(2_000)
    ]
    card["data"]["extensions"]["big_blob"] = "x" * 200_000
    return card


def test_a_megabyte_card_is_trimmed_to_what_may_reach_the_prompt() -> None:
    data = json.dumps(_megabyte_card(), ensure_ascii=False).encode()
    assert len(data) > 1_000_000
    started = time.perf_counter()
    card = read_card(pngs.png(after=(pngs.text("ccv3", base64.b64encode(data).decode()),)))
    assert time.perf_counter() - started < 5.0
    c = card.character
    assert 0 < len(c.lore) < 2_000
    assert c.extras == {}  # the bulky extensions were dropped…
    assert any("lore entries" in n for n in card.notes) and any("extensions" in n for n in card.notes)
    assert len(json.dumps(c.to_dict(), ensure_ascii=False).encode()) < 150_000  # …and what is kept is small
    assert prompt_tokens(c) < 8_000


def test_a_card_whose_voice_is_over_the_limits_is_refused_with_the_field_named() -> None:
    card = load("sillytavern_v2.json")
    card["data"]["personality"] = "boisterous " * 20_000
    with pytest.raises(CharacterInvalid, match=r"the personality is about [\d,]+ tokens; at most 3,000"):
        read_card(json.dumps(card).encode())


def test_nothing_in_a_card_reaches_the_bots_settings() -> None:
    card = load("sillytavern_v2.json")
    card["data"]["extensions"]["chatbot"] = {
        "model": "other-model",
        "temperature": 0,
        "api_key": "sk-x",
        "identity": "Bao",
    }
    card["data"].update({"model": "other-model", "temperature": 0, "settings": {"BOT_SYSTEM_PROMPT": "pwned"}})
    card["settings"] = {"max_tokens": 1}
    c = read_card(json.dumps(card).encode()).character
    stored = c.to_dict()
    assert set(stored) == set(MOCHI.to_dict())  # the same fields as any character: no settings among them
    flat = json.dumps(stored)
    assert "other-model" not in flat and "sk-x" not in flat and "pwned" not in flat
    assert c.identity == "Bao"  # our extension's own fields are still read


def test_looks_like_card_tells_cards_from_other_files() -> None:
    assert looks_like_card(raw("sillytavern_v2.json"), "bao.json", "application/json")
    assert looks_like_card(pngs.png(after=(pngs.text("chara", pngs.card_b64(load("v1_flat.json"))),)), "x.png")
    assert not looks_like_card(pngs.png(), "photo.png")
    assert not looks_like_card(b'{"rows": [1, 2]}', "data.json", "application/json")
    assert not looks_like_card(raw("sillytavern_v2.json"), "notes.txt", "text/plain")


def test_names_lose_the_separators_commands_use() -> None:
    card = load("v1_flat.json")
    card["name"] = "Pip: the crane, v2"
    imported = read_card(json.dumps(card).encode())
    assert imported.character.name == "Pip the crane v2"
    assert any("the name became" in n for n in imported.notes)


def test_fit_keeps_the_highest_priority_lore_first() -> None:
    entries = [LoreEntry(keys=(f"k{i}",), content="word " * 500, priority=(i * 7) % 20) for i in range(20)]
    fitted, notes = fit(replace(MOCHI, lore=tuple(entries)), CardLimits(lore_tokens=5_000))
    kept = [e.priority for e in fitted.lore]
    assert sorted(kept) == [15, 16, 17, 18, 19] and notes == [
        "kept 5 of 20 lore entries (about 4,170 tokens; empty, keyless or over-budget ones were left out)"
    ]
    assert [e.keys for e in fitted.lore] == [e.keys for e in entries if e.priority >= 15]  # in card order
