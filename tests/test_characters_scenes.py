"""Scenes: /scene arguments, the request (cast in a stable system block, JSON asked for), the
model's answer validated in code, and the Markdown script (bold speakers, italic directions,
timing cues for short-video styles)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bot.characters.character import CharacterError
from bot.characters.scenes import (
    Scene,
    SceneLine,
    parse_scene,
    parse_scene_args,
    render_scene,
    response_format,
    retry_instruction,
    scene_messages,
    script_seconds,
)
from bot.copywriting.styles import custom_style
from tests.test_characters_cards import MOCHI
from tests.test_characters_prompt import bao, zh

CAST = (MOCHI, bao())


def test_scene_arguments() -> None:
    request = parse_scene_args("Mochi, Captain Bao: the new flavour launches")
    assert request.names == ("Mochi", "Captain Bao") and request.situation == "the new flavour launches"
    assert parse_scene_args("  Mochi ，Captain Bao：the new flavour launches ") == request
    request = parse_scene_args("团团、Captain Bao：新品发布会上，两人抢话筒")
    assert request.names == ("团团", "Captain Bao") and request.situation == "新品发布会上，两人抢话筒"
    assert parse_scene_args("A & B: x: with a colon").situation == "x: with a colon"
    assert parse_scene_args("A, A, B: dup").names == ("A", "B")
    for bad, reason in (
        ("", "Usage"),
        ("Mochi, Bao", "Usage"),
        ("Mochi, Bao:   ", "Usage"),
        ("Mochi: alone", "at least two"),
        ("A,B,C,D,E,F,G: crowd", "at most 6"),
    ):
        with pytest.raises(CharacterError, match=reason):
            parse_scene_args(bad)


def test_timing_cues_only_for_short_video_script_styles() -> None:
    assert script_seconds("douyin") == 60
    assert script_seconds("xiaohongshu") is None and script_seconds(None) is None
    assert script_seconds(custom_style("30 秒短视频口播脚本，轻松搞笑").stored()) == 60
    assert script_seconds(custom_style("a calm LinkedIn voice for our launch").stored()) is None


def test_the_request_has_a_stable_cast_block_and_asks_for_json() -> None:
    one = scene_messages(CAST, "launch day", base_system="BASE")
    other = scene_messages(tuple(reversed(CAST)), "a storm", base_system="BASE")
    assert one[0] == other[0]  # the same cast in any order: the same system bytes
    system = one[0]["content"]
    assert system.startswith("BASE\n\n## Cast") and system.count("<character_sheet") == 2
    assert "How Mochi sounds:\n- “hi User~ mochi-mochi~ 🍡”" in system
    ask = one[1]["content"]
    assert "launch day" in ask and '"speaker" is exactly one of: Mochi, Captain Bao, narrator' in ask
    assert "timing" not in ask
    timed = scene_messages(CAST, "launch day", timing_seconds=30)[1]["content"]
    assert '"timing": "0-3s"' in timed and "at most 30 seconds" in timed
    schema = response_format(CAST, 30)["json_schema"]["schema"]
    item = schema["properties"]["lines"]["items"]
    assert item["required"] == ["speaker", "text", "timing"]
    assert item["properties"]["speaker"]["enum"] == ["Mochi", "Captain Bao", "narrator"]


ANSWER = """<think>Two voices: soft baker, loud pirate.</think>
```json
{"title": "Launch day", "lines": [
  {"speaker": "narrator", "text": "", "direction": "A bakery at dawn."},
  {"speaker": "Captain Bao", "text": "Ahoy! New buns on deck!", "direction": "*bursts in*"},
  {"name": "mochi", "line": "five more minutes~ 🍡", "action": "(yawns)"},
  {"speaker": "Mo", "text": "...fine, let it rise!"},
]}
```"""


def test_a_scene_answer_becomes_a_script() -> None:
    parsed = parse_scene(ANSWER, CAST)
    assert parsed.ok, parsed.problems
    assert parsed.scene == Scene(
        "Launch day",
        (
            SceneLine("", "", "A bakery at dawn."),
            SceneLine("Captain Bao", "Ahoy! New buns on deck!", "*bursts in*"),
            SceneLine("Mochi", "five more minutes~ 🍡", "(yawns)"),  # synonyms, any case
            SceneLine("Mochi", "...fine, let it rise!"),  # by nickname
        ),
    )
    assert render_scene(parsed.scene) == (
        "**🎬 Launch day**\n\n"
        "*(A bakery at dawn.)*\n\n"
        "**Captain Bao**: *(bursts in)* Ahoy! New buns on deck!\n\n"
        "**Mochi**: *(yawns)* five more minutes~ 🍡\n\n"
        "**Mochi**: ...fine, let it rise!"
    )


def test_a_short_video_scene_in_chinese_carries_timing_cues() -> None:
    cast = (zh(), replace(MOCHI, name="小麦"))
    answer = json.dumps(
        {
            "title": "新品来啦",
            "lines": [
                {"speaker": "团团", "text": "桂花乌龙奶盖上新啦～🐼", "direction": "举起杯子", "timing": "0-3s"},
                {"speaker": "小麦", "text": "闻起来像秋天！", "direction": "（凑近）", "timing": "3-6s"},
                {"speaker": "团子", "text": "快来门店尝尝～", "timing": "6-9s"},
            ],
        },
        ensure_ascii=False,
    )
    parsed = parse_scene(answer, cast, timing_seconds=60)
    assert parsed.ok, parsed.problems
    assert render_scene(parsed.scene, timing=True) == (
        "**🎬 新品来啦**\n\n"
        "`0-3s` **团团**：*（举起杯子）* 桂花乌龙奶盖上新啦～🐼\n\n"
        "`3-6s` **小麦**：*（凑近）* 闻起来像秋天！\n\n"
        "`6-9s` **团团**：快来门店尝尝～"
    )
    # Without the script style the same scene has no cues.
    assert "`0-3s`" not in render_scene(parsed.scene)


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("Sorry, here is a scene: Mochi says hi.", "no JSON object"),
        ('{"scene_text": "hi"}', "no lines found"),
        (
            '{"lines": [{"speaker": "Mochi", "text": "hi"}, {"speaker": "Godzilla", "text": "roar"}]}',
            "speakers not in the cast (Mochi, Captain Bao): “Godzilla” (line 2)",
        ),
        (
            '{"lines": [{"speaker": "Mochi", "text": "hi"}, {"speaker": "Mochi", "text": "again"}]}',
            "these characters never speak: Captain Bao",
        ),
        ('{"lines": [{"speaker": "Mochi", "text": "hi"}]}', "at least two spoken lines"),
    ],
)
def test_unusable_scenes_are_explained_for_a_retry(answer: str, problem: str) -> None:
    parsed = parse_scene(answer, CAST)
    assert not parsed.ok and any(problem in p for p in parsed.problems), parsed.problems
    assert problem in retry_instruction(parsed.problems)


def test_timing_problems_in_a_script_scene() -> None:
    answer = json.dumps(
        {
            "lines": [
                {"speaker": "Mochi", "text": "hi", "timing": "0-3s"},
                {"speaker": "Captain Bao", "text": "ahoy"},
                {"speaker": "Mochi", "text": "bye", "timing": "00:50-01:15"},
            ]
        }
    )
    parsed = parse_scene(answer, CAST, timing_seconds=60)
    assert parsed.problems == ["lines without a timing cue: 2", "the scene runs to 75 s; at most 60 s"]
    assert parsed.scene is not None and len(parsed.scene.lines) == 3  # usable if the retry fails too


def test_broken_json_is_repaired() -> None:
    answer = '{"lines": [{"speaker": "Mochi", "text": "hi",}, {"speaker": "Captain Bao", "text": "ahoy"'
    parsed = parse_scene(answer, CAST)
    assert parsed.ok and [ln.text for ln in parsed.scene.lines] == ["hi", "ahoy"]  # type: ignore[union-attr]
