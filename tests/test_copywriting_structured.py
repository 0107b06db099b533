"""Parsing model answers into validated variants: reasoning, prose, fences, broken JSON."""

from __future__ import annotations

import json

import pytest

from bot.copywriting.structured import extract_json, parse_variants, strip_reasoning
from bot.copywriting.styles import STYLES, custom_style
from bot.copywriting.variants import Variant

XHS = STYLES["xiaohongshu"]
V1 = {"title": "夏日防晒好物🌞", "body": "清爽不油腻☀️", "hashtags": ["防晒", "好物", "护肤"]}
V2 = {"title": "通勤妆不脱🌸", "body": "一整天都服帖💄", "hashtags": ["#底妆", "#通勤", "#好物"]}
V3 = {"title": "平价宝藏水乳💧", "body": "学生党闭眼入✨", "hashtags": "#水乳 #平价 #学生党"}
GOOD = json.dumps({"variants": [V1, V2, V3]}, ensure_ascii=False)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("<think>plan</think>answer", "answer"),
        ("<think>a</think>x<think>b</think>y", "xy"),
        ('reasoning without opening tag</think>\n{"a": 1}', '{"a": 1}'),
        ("visible<think>cut off mid-thought", "visible"),
        ("<THINK>upper</THINK>ok", "ok"),
        ("plain", "plain"),
    ],
)
def test_strip_reasoning(raw: str, expected: str) -> None:
    assert strip_reasoning(raw) == expected


def test_extract_json_from_prose_fences_and_repairs() -> None:
    assert extract_json('Here you go:\n```json\n{"a": [1, 2]}\n```\nEnjoy!') == {"a": [1, 2]}
    assert extract_json('Sure! {"a": {"b": "}"}} hope it helps') == {"a": {"b": "}"}}
    assert extract_json('{"a": [1, 2,], "b": "x",}') == {"a": [1, 2], "b": "x"}  # trailing commas
    assert extract_json('{"variants": [{"title": "t", "body": "cut') == {"variants": [{"title": "t", "body": "cut"}]}
    assert extract_json("no json at all, just words") is None


def test_valid_answer_gives_three_normalised_variants() -> None:
    parsed = parse_variants(GOOD, XHS, 3)
    assert parsed.ok and len(parsed.variants) == 3
    assert parsed.variants[1].hashtags == ["底妆", "通勤", "好物"]  # '#' removed
    assert parsed.variants[2].hashtags == ["水乳", "平价", "学生党"]  # one string split


def test_answer_wrapped_in_prose_with_inline_thinking() -> None:
    text = f"<think>They want 3 notes.</think>好的！以下是三个方案：\n```json\n{GOOD}\n```\n希望喜欢～"
    parsed = parse_variants(text, XHS, 3)
    assert parsed.ok and parsed.variants[0].title == "夏日防晒好物🌞"


def test_synonyms_bare_list_and_single_object() -> None:
    synonyms = json.dumps([{"标题": "标题一", "content": "正文一", "tags": ["a", "b", "c"]}], ensure_ascii=False)
    parsed = parse_variants(synonyms, XHS, 1)
    assert parsed.ok and parsed.variants[0].body == "正文一"
    single = parse_variants(json.dumps(V1, ensure_ascii=False), XHS, 1)
    assert single.ok and single.variants[0].title == V1["title"]
    options = parse_variants(json.dumps({"options": [V1, V2]}, ensure_ascii=False), XHS, 2)
    assert options.ok and len(options.variants) == 2


def test_missing_fields_and_short_counts_are_problems() -> None:
    text = json.dumps({"variants": [V1, {"title": "没有正文"}]}, ensure_ascii=False)
    parsed = parse_variants(text, XHS, 3)
    assert not parsed.ok
    assert [v.title for v in parsed.variants] == [V1["title"]]
    assert parsed.positions == [1]
    assert "variant 2: missing body" in parsed.problems
    assert "expected 3 variants, got 2" in parsed.problems


def test_prose_only_answer_is_not_json() -> None:
    parsed = parse_variants("当然可以！标题：夏日防晒。正文：很好用。", XHS, 3)
    assert not parsed.ok and not parsed.found_json and parsed.variants == []


def test_extra_variants_are_dropped_and_custom_titles_optional() -> None:
    text = json.dumps({"variants": [V1, V2, V3, V1]}, ensure_ascii=False)
    assert len(parse_variants(text, XHS, 3).variants) == 3
    custom = custom_style("温柔治愈系")
    parsed = parse_variants('{"variants": [{"body": "晚安"}]}', custom, 1)
    assert parsed.ok and parsed.variants[0].title == ""


def test_scripts_and_lists_normalise() -> None:
    text = json.dumps(
        {
            "variants": [
                {
                    "title": "t",
                    "hashtags": ["a", "b"],
                    "script": [{"时间": "0-3s", "画面": "特写", "口播": "别再乱买防晒了"}],
                }
            ]
        },
        ensure_ascii=False,
    )
    parsed = parse_variants(text, STYLES["douyin"], 1)
    assert parsed.ok
    seg = parsed.variants[0].segments[0]
    assert (seg.time, seg.visual, seg.voice) == ("0-3s", "特写", "别再乱买防晒了")
    points = parse_variants(
        '{"variants": [{"title": "t", "items": [{"point": "轻薄", "detail": "一抹化水"}]}]}',
        STYLES["selling-points"],
        1,
    )
    assert points.variants[0].items == ["轻薄：一抹化水"]


def test_variant_round_trips_through_dict() -> None:
    v = parse_variants(GOOD, XHS, 3).variants[0]
    assert Variant.from_dict(json.loads(json.dumps(v.to_dict()))) == v
