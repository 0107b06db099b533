"""What people see of characters: the list, a card, the greeting, and whom a group message
addresses."""

from __future__ import annotations

from dataclasses import replace

from bot.characters.show import addressed, card_markdown, greeting, list_markdown
from tests.test_characters_cards import MOCHI
from tests.test_characters_prompt import bao, zh


def test_the_list_marks_the_active_character_and_where_each_lives() -> None:
    text = list_markdown([(MOCHI, "group"), (bao(), "workspace")], active="mochi")
    assert "- **Mochi** — A sleepy rice-cake mascot of Mochi Bakery _(this group)_ ✅" in text
    assert text.endswith(
        "- **Captain Bao** — Captain Bao is the steamed-bun pirate captain of the Golden Dumpling. _(everywhere here)_"
    )
    assert text.count("✅") == 1
    assert "/character new NAME" in list_markdown([])


def test_a_card_for_people() -> None:
    text = card_markdown(MOCHI)
    assert text.startswith("**Mochi** (Mo) — A sleepy rice-cake mascot")
    assert "**Speech:** soft, bakery words" in text and "“mochi-mochi~” / “let it rise!”" in text
    assert "**Never:** never insults a fan; never promises discounts" in text
    assert "_2 lore entries · language en · by bakery team · v2_" in text
    assert "{{" not in card_markdown(bao()) and "**Scenario:** the user has just come aboard" in card_markdown(bao())
    long = card_markdown(replace(MOCHI, background="x" * 10_000), max_chars=500)
    assert len(long) == 500 and long.endswith("…")


def test_the_greeting_names_the_person() -> None:
    assert greeting(zh(), "小王") == "嗨嗨～小王！团团来啦🐼🍵 今天想喝点什么呀？"
    assert greeting(zh(), "小王", 1) == "团团睡醒啦～小王早上好！☀️"
    assert greeting(replace(MOCHI, first_message="", alternate_greetings=()), "A") == ""


def test_a_group_message_addressed_by_name() -> None:
    cast = [MOCHI, bao(), zh(), replace(MOCHI, name="Bao")]
    assert addressed("团团，新品是什么？", cast).name == "团团"
    assert addressed("团子 在吗", cast).name == "团团"  # nickname
    assert addressed("captain bao: what's cooking", cast).name == "Captain Bao"  # longest name first
    assert addressed("Bao, hi", cast).name == "Bao"
    assert addressed("hey @mochi look", cast).name == "Mochi"
    assert addressed("Mochiko is my cat", cast) is None  # not a whole word
    assert addressed("what do you think?", cast) is None
