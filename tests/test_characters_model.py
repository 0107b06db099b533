"""The character model: text hygiene, names, example dialogue in the cards' text form, size
caps with errors that name the field, and one-field edits."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.characters.character import (
    CardLimits,
    CharacterError,
    CharacterInvalid,
    ExampleLine,
    check,
    clean_text,
    edit,
    format_examples,
    name_key,
    normalize_name,
    parse_examples,
    problems,
    prompt_tokens,
    truncate_tokens,
)
from bot.core.tokens import estimate_tokens
from tests.test_characters_cards import MOCHI


def test_clean_text_drops_invisible_characters_and_unifies_placeholders() -> None:
    sneaky = "hi\u0000 {{ Char }}\r\nmeet <USER>\U000e0049\U000e0047\u202e and {{ORIGINAL}} \u200d👩‍🍳 "
    assert clean_text(sneaky) == "hi {{char}}\nmeet {{user}} and {{original}} \u200d👩‍🍳"  # ZWJ emoji kept
    assert clean_text(None) == "" and clean_text(12) == "12" and clean_text({"a": 1}) == ""


def test_names() -> None:
    assert normalize_name("  Captain:  Bao,\nthe\tGreat ") == "Captain Bao the Great"
    assert normalize_name("**") == ""
    assert name_key("Ｃａｐｔａｉｎ  BAO") == name_key("captain bao") == "captain bao"


def test_example_dialogue_text_form() -> None:
    text = (
        "intro line before anyone speaks\n<START>\n{{user}}: hi\nMochi： *waves*\nstill waving\n\n<start>\n<BOT>: solo"
    )
    assert parse_examples(text, "Mochi") == (
        (ExampleLine("char", "intro line before anyone speaks"),),
        (ExampleLine("user", "hi"), ExampleLine("char", "*waves*\nstill waving")),
        (ExampleLine("char", "solo"),),
    )
    dialogues = parse_examples(text, "Mochi")
    assert parse_examples(format_examples(dialogues)) == dialogues
    assert parse_examples("") == () and parse_examples("<START>\n<START>") == ()


def test_sizes_are_checked_with_the_field_named() -> None:
    assert problems(MOCHI) == [] and check(MOCHI) is MOCHI
    too_big = replace(
        MOCHI, background="bake " * 4_000, identity="one\ntwo", examples=((ExampleLine("char", "x" * 10_000),),)
    )
    with pytest.raises(CharacterInvalid) as caught:
        check(too_big)
    found = caught.value.problems
    assert "the identity must be one line" in found
    assert any(p.startswith("the background is about 6,667 tokens; at most 3,000") for p in found)
    assert any(p.startswith("the example dialogue is about") for p in found)
    assert any("into every prompt" in p for p in found)
    assert str(caught.value).startswith("The character doesn't fit: ")
    small = CardLimits(field_tokens=10, prompt_tokens=100_000, examples_tokens=100_000)
    assert problems(replace(MOCHI, personality="word " * 40), small) == [
        "the personality is about 67 tokens; at most 10",
        *problems(MOCHI, small),
    ]
    assert problems(replace(MOCHI, name="")) == ["it has no name"]


def test_prompt_tokens_count_what_reaches_every_prompt_only() -> None:
    base = prompt_tokens(MOCHI)
    assert prompt_tokens(replace(MOCHI, creator_notes="n" * 3_000, tags=("a",) * 3)) == base
    assert prompt_tokens(replace(MOCHI, personality=MOCHI.personality + " and brave")) > base
    assert prompt_tokens(replace(MOCHI, lore=MOCHI.lore[:1])) < base  # the always-on entry counts


def test_truncate_tokens() -> None:
    cut = truncate_tokens("茶" * 1_000, 100)
    assert cut.endswith("…") and estimate_tokens(cut) <= 101
    assert truncate_tokens("short", 100) == "short"


def test_editing_one_field() -> None:
    assert edit(MOCHI, "personality", "grumpy\r\n").personality == "grumpy"
    assert edit(MOCHI, "Catchphrases", "- yum\n- let it rise!\nyum").speech.catchphrases == ("yum", "let it rise!")
    assert edit(MOCHI, "emoji", "🍞 only").speech.emoji == "🍞 only"
    assert edit(MOCHI, "口头禅", "冲鸭").speech.catchphrases == ("冲鸭",)
    assert edit(MOCHI, "boundaries", "never swears\nnever sells").boundaries == ("never swears", "never sells")
    assert edit(MOCHI, "first message", "Hi~").first_message == "Hi~"
    assert edit(MOCHI, "post-history", "Short!").post_history_instructions == "Short!"
    assert edit(MOCHI, "examples", "<START>\n{{user}}: a\n{{char}}: b").examples == (
        (ExampleLine("user", "a"), ExampleLine("char", "b")),
    )
    assert edit(MOCHI, "name", "Mochi: II").name == "Mochi II"
    with pytest.raises(CharacterError, match="There is no field “mood”. Fields: .*personality"):
        edit(MOCHI, "mood", "happy")
    with pytest.raises(CharacterInvalid, match="the scenario is about"):
        edit(MOCHI, "scenario", "x " * 10_000)
    with pytest.raises(CharacterInvalid, match="it has no name"):
        edit(MOCHI, "name", ":::")
