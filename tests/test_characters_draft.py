"""/character new NAME: one line — the model's JSON draft validated in code into a Character,
or problems worded for one retry and a reason for the user."""

from __future__ import annotations

import json

import pytest

from bot.characters.card_draft import (
    DraftResult,
    draft_messages,
    draft_schema,
    parse_draft,
    parse_new_args,
    response_format,
    retry_instruction,
)
from bot.characters.character import CardLimits, CharacterError, ExampleLine
from bot.characters.voice_prompt import render

DRAFT = {
    "identity": "山茶记的熊猫吉祥物，粉丝群里的开心果",
    "personality": "元气、嘴甜、有点小迷糊",
    "speech_style": {
        "vocabulary": "口语化，爱用叠词",
        "catchphrases": ["团团来啦", "冲鸭"],
        "punctuation": "句尾常用“～”",
        "emoji": "🐼🍵，每条一两个",
    },
    "background": "出生在雅安茶园，最爱冻顶乌龙。",
    "scenario": "山茶记官方粉丝群。",
    "boundaries": ["不透露员工隐私", "不承诺退款金额"],
    "example_dialogue": [
        [{"speaker": "user", "text": "新品是什么？"}, {"speaker": "char", "text": "桂花乌龙奶盖～冲鸭！🐼"}]
    ],
    "first_message": "嗨嗨～{{user}}！团团来啦🐼",
    "alternate_greetings": ["团团睡醒啦～"],
    "language": "zh",
    "tags": ["吉祥物", "茶饮"],
}


def test_arguments() -> None:
    assert parse_new_args("团团：山茶记的熊猫吉祥物") == ("团团", "山茶记的熊猫吉祥物")
    assert parse_new_args(" Captain Bao : a pirate chef: loud ") == ("Captain Bao", "a pirate chef: loud")
    for bad in ("", "Mochi", "Mochi:", ": a mascot"):
        with pytest.raises(CharacterError, match="Usage: /character new NAME"):
            parse_new_args(bad)


def test_a_good_draft_becomes_a_character_named_as_asked() -> None:
    answer = (
        "<think>mascot, brand-safe</think>\n```json\n"
        + json.dumps({**DRAFT, "name": "Someone Else"}, ensure_ascii=False)
        + "\n```"
    )
    result = parse_draft(answer, "团团", creator="7")
    assert result.ok, result.problems
    c = result.character
    assert c is not None and c.name == "团团" and c.creator == "7"
    assert c.speech.catchphrases == ("团团来啦", "冲鸭") and c.boundaries == ("不透露员工隐私", "不承诺退款金额")
    assert c.examples == ((ExampleLine("user", "新品是什么？"), ExampleLine("char", "桂花乌龙奶盖～冲鸭！🐼")),)
    assert c.language == "zh" and c.first_message == "嗨嗨～{{user}}！团团来啦🐼"
    assert "冲鸭" in render(c).system_block


def test_what_models_actually_send_is_accepted() -> None:
    sloppy = {
        "Identity": "A pirate chef\nwho shouts",
        "traits": "loud",
        "voice": "sea slang, lots of 'arr'",
        "backstory": "Sailed for years.",
        "setting": "the galley",
        "never": "never swears\nnever sells",
        "examples": "<START>\n{{user}}: hungry\n{{char}}: Arr, eat!",
        "greeting": "Ahoy!",
    }
    result = parse_draft(json.dumps({"data": sloppy}) + ",,", "Bao")
    assert result.ok, result.problems
    c = result.character
    assert c is not None
    assert c.identity == "A pirate chef who shouts" and c.speech.vocabulary == "sea slang, lots of 'arr'"
    assert c.boundaries == ("never swears", "never sells") and c.examples[0][1] == ExampleLine("char", "Arr, eat!")
    broken = json.dumps(DRAFT, ensure_ascii=False)[:-40]  # cut off mid-answer: repaired as far as it goes
    cut = parse_draft(broken, "团团")
    assert cut.ok and cut.character is not None and cut.character.alternate_greetings == ("团团睡醒啦～",)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"identity": ""}, "missing identity"),
        ({"speech_style": {}}, "missing speech_style"),
        ({"boundaries": []}, "missing boundaries"),
        ({"example_dialogue": [[{"speaker": "user", "text": "hi"}]]}, "missing example_dialogue"),
        ({"first_message": ""}, "missing first_message"),
        ({"background": "茶" * 5_000}, "the background is about 5,001 tokens; at most 3,000"),
    ],
)
def test_an_unusable_draft_says_why(change: dict, problem: str) -> None:
    result = parse_draft(json.dumps({**DRAFT, **change}, ensure_ascii=False), "团团")
    assert not result.ok and result.character is None and any(problem in p for p in result.problems)
    assert problem in retry_instruction(result.problems)
    assert result.reason.startswith("The model's draft could not be used (") and "{" not in result.reason


def test_no_json_at_all() -> None:
    result = parse_draft("I'd love to help! 团团 is a panda.", "团团")
    assert result == DraftResult(None, ["the answer contained no JSON object"])


def test_limits_are_parameters() -> None:
    assert parse_draft(json.dumps(DRAFT, ensure_ascii=False), "团团").ok
    tight = parse_draft(json.dumps(DRAFT, ensure_ascii=False), "团团", limits=CardLimits(prompt_tokens=50))
    assert any("into every prompt" in p for p in tight.problems)


def test_the_request() -> None:
    messages = draft_messages("团团", "山茶记的熊猫吉祥物", base_system="BASE")
    assert messages[0] == {"role": "system", "content": "BASE"}
    assert "“团团”: 山茶记的熊猫吉祥物" in messages[1]["content"] and '"speech_style"' in messages[1]["content"]
    schema = response_format()["json_schema"]["schema"]
    assert schema == draft_schema() and "boundaries" in schema["required"]
    assert "strict" not in json.dumps(response_format())  # the gateway rejects it
