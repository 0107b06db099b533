"""Styles, character counting, constraints, schema and rendering: pure units."""

from __future__ import annotations

import json

import pytest

from bot.copywriting.constraints import check_variant, check_variants
from bot.copywriting.measure import (
    char_count,
    emoji_count,
    find_hashtags,
    graphemes,
    truncate_chars,
    weighted_length,
    word_count,
)
from bot.copywriting.refine import ACTIONS, refine_message, target_language, translation_style
from bot.copywriting.render import render_variants
from bot.copywriting.schema import format_instruction, response_format, variants_schema
from bot.copywriting.styles import (
    BUILTIN,
    STYLES,
    custom_style,
    find_style,
    interpret_style_args,
    resolve_style,
    style_instructions,
    style_list_markdown,
)
from bot.copywriting.variants import Segment, Variant

XHS = STYLES["xiaohongshu"]


# --- counting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", 0),
        ("hello", 5),
        ("夏日防晒好物", 6),
        ("👍🏽", 1),  # skin tone modifier
        ("👨‍👩‍👧‍👦", 1),  # ZWJ family: 7 code points
        ("🇨🇳🇺🇸", 2),  # two flags, four regional indicators
        ("1️⃣", 1),  # keycap sequence
        ("❤️", 1),  # variation selector
        ("é", 1),  # e + combining acute
        ("a\r\nb", 3),
        ("防晒🌞SPF50+", 9),
    ],
)
def test_char_count_counts_what_users_see(text: str, expected: int) -> None:
    assert char_count(text) == expected


def test_truncate_never_splits_an_emoji() -> None:
    text = "好物👨‍👩‍👧分享"
    assert truncate_chars(text, 3) == "好物👨‍👩‍👧"
    assert graphemes(text)[2] == "👨‍👩‍👧"


def test_hashtags_words_emoji_and_twitter_weight() -> None:
    text = "今天分享 #好物分享 #夏日穿搭。 微博 #热门话题# and #launch! url https://x.com/a#frag #2"
    assert find_hashtags(text) == ["好物分享", "夏日穿搭", "热门话题", "launch"]
    assert word_count("hello world 你好") == 4
    assert emoji_count("🌞 sun ☀️ 👍🏽") == 3
    assert weighted_length("abc") == 3
    assert weighted_length("你好") == 4
    assert weighted_length("see https://example.com/" + "x" * 100) == 4 + 23


# --- styles ----------------------------------------------------------------------------


def test_builtin_library_covers_the_issue() -> None:
    ids = {s.id for s in BUILTIN}
    assert {
        "xiaohongshu",
        "moments",
        "weibo",
        "douyin",
        "selling-points",
        "wechat-headlines",
        "launch-post",
        "linkedin",
        "ad-headlines",
        "product-description",
    } <= ids
    assert XHS.constraints.title_max == 20 and XHS.constraints.body_max == 1000
    assert XHS.constraints.hashtags_min >= 1 and XHS.constraints.emoji_min >= 1
    for style in BUILTIN:
        assert style.name_zh and style.name_en and style.instructions
        schema = variants_schema(style, 3)
        assert schema["properties"]["variants"]["minItems"] == 3
        assert set(schema["properties"]["variants"]["items"]["required"]) == set(style.fields)


@pytest.mark.parametrize("name", ["xhs", "小红书", "XiaoHongShu", "Xiaohongshu product post", "小红书种草笔记"])
def test_find_style_by_alias_and_names(name: str) -> None:
    assert find_style(name) is XHS


def test_system_prompt_is_stable_and_names_the_limits() -> None:
    text = XHS.system_prompt()
    assert text == STYLES["xiaohongshu"].system_prompt()
    assert "20" in text and "1000" in text
    assert style_instructions("xiaohongshu") == text
    assert style_instructions("custom:俏皮的宠物店文案") == custom_style("俏皮的宠物店文案").system_prompt()


def test_custom_style_round_trips_and_reads_a_length_limit() -> None:
    style = custom_style("俏皮的宠物店文案，多用拟声词，100字以内")
    assert style.is_custom and style.language == "zh"
    assert style.constraints.body_max == 100
    assert resolve_style(style.stored()) == style
    assert custom_style("Dry British humour, under 200 characters").constraints.body_max == 200
    assert resolve_style("weibo") is STYLES["weibo"]
    assert resolve_style(None) is None and resolve_style("  ") is None


@pytest.mark.parametrize(
    "args, action, style_id",
    [
        ("", "list", None),
        ("list", "list", None),
        ("off", "clear", None),
        ("关闭", "clear", None),
        ("weibo", "set", "weibo"),
        ("抖音", "set", "douyin"),
        ("custom 写给程序员的冷幽默文案", "set", "custom"),
        ("自定义：温柔治愈系", "set", "custom"),
        ("formal but warm newsletter intro for bakeries", "set", "custom"),
        ("nope", "list", None),
    ],
)
def test_style_command_arguments(args: str, action: str, style_id: str | None) -> None:
    choice = interpret_style_args(args)
    assert choice.action == action
    assert (choice.style.id if choice.style else None) == style_id
    if args == "nope":
        assert "no style called" in choice.message


def test_style_list_mentions_every_style() -> None:
    text = style_list_markdown(STYLES["weibo"])
    for style in BUILTIN:
        assert style.id in text and style.name_zh in text
    assert "✅" in text


# --- schema ----------------------------------------------------------------------------


def test_response_format_shape_has_no_strict_key() -> None:
    fmt = response_format(XHS, 3)
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"]
    assert "strict" not in json.dumps(fmt)
    items = fmt["json_schema"]["schema"]["properties"]["variants"]
    assert items["maxItems"] == 3 and items["items"]["required"] == ["title", "body", "hashtags"]
    instruction = format_instruction(XHS, 3)
    assert '"variants"' in instruction and "exactly 3" in instruction


# --- constraints -----------------------------------------------------------------------


def good_xhs(**kw: object) -> Variant:
    values = dict(
        title="夏日防晒好物分享🌞", body="姐妹们！这支防晒真的绝了☀️ 清爽不油腻。", hashtags=["防晒", "夏日好物", "护肤"]
    )
    values.update(kw)
    return Variant(**values)  # type: ignore[arg-type]


def test_a_fitting_variant_has_no_violations() -> None:
    assert check_variant(good_xhs(), XHS) == []


def test_title_limit_counts_chinese_and_emoji_as_one() -> None:
    title = "这是一个刚好二十个字的标题呀真的刚刚好🌞"  # 19 Han + 1 emoji = 20
    assert char_count(title) == 20
    assert check_variant(good_xhs(title=title), XHS) == []
    problems = check_variant(good_xhs(title=title + "！"), XHS)
    assert problems == ["the title is 21 characters; the limit is 20 (cut 1)"]


def test_hashtag_count_includes_inline_tags_and_format() -> None:
    too_many = good_xhs(hashtags=[f"标签{i}" for i in range(9)], body="好物 #额外 #再来一个 🌞")
    assert any("11 hashtags; use at most 10" in p for p in check_variant(too_many, XHS))
    assert any("use at least 3" in p for p in check_variant(good_xhs(hashtags=["一个"]), XHS))
    assert any("contains a space" in p for p in check_variant(good_xhs(hashtags=["a b", "c", "d"]), XHS))
    assert any("emoji" in p for p in check_variant(good_xhs(title="无表情标题", body="没有表情"), XHS))


def test_moments_refuses_hashtags_and_lists_check_items() -> None:
    moments = STYLES["moments"]
    assert check_variant(Variant(body="周末去海边啦 #周末#"), moments) == ["remove all hashtags"]
    points = STYLES["selling-points"]
    v = Variant(title="轻薄防晒", items=["清爽：一抹化水"] * 4 + ["超" * 41])
    problems = check_variant(v, points)
    assert "5 items" not in " ".join(problems)
    assert any(p.startswith("item 5 is 41 characters") for p in problems)
    assert any("write at least 5" in p for p in check_variant(Variant(title="x", items=["a"]), points))


def test_script_timing_cues_and_duration() -> None:
    douyin = STYLES["douyin"]
    ok = Variant(
        title="三秒看懂防晒",
        hashtags=["防晒", "好物"],
        segments=[
            Segment("0-3s", "特写", "别再乱买防晒了！"),
            Segment("3-15s", "上脸", "这支清爽不油。"),
            Segment("15-30秒", "对比", "点左下角带走。"),
        ],
    )
    assert check_variant(ok, douyin) == []
    bad = Variant(
        title="x",
        hashtags=["a", "b"],
        segments=[Segment("开头", "特写", "嗨"), Segment("10-5s", "x", "y"), Segment("50-75s", "x", "y")],
    )
    problems = check_variant(bad, douyin)
    assert any("time cue" in p for p in problems)
    assert any("does not follow" in p for p in problems)
    assert any("runs 75 s" in p for p in problems)
    assert check_variants([ok, bad], douyin).keys() == {2}


# --- rendering -------------------------------------------------------------------------


def test_render_is_numbered_markdown_not_json() -> None:
    text = render_variants([good_xhs(), good_xhs(title="第二个标题🌞")], XHS, {2: ["the title is too long"]})
    assert "**方案 1** · **夏日防晒好物分享🌞**" in text
    assert "**方案 2**" in text
    assert "#防晒 #夏日好物 #护肤" in text
    assert "⚠️" in text and "too long" in text
    assert "{" not in text and '"title"' not in text


def test_render_weibo_tags_scripts_and_english_labels() -> None:
    weibo = render_variants([Variant(body="新品上线", hashtags=["新品"])], STYLES["weibo"])
    assert "#新品#" in weibo
    script = render_variants([Variant(title="t", segments=[Segment("0-3s", "特写", "别再乱买了")])], STYLES["douyin"])
    assert "**0-3s**" in script and "口播：别再乱买了" in script
    ads = render_variants([Variant(title="Benefit", items=["Save 2 Hours a Day"])], STYLES["ad-headlines"])
    assert "**Option 1** · **Benefit**" in ads and "- Save 2 Hours a Day" in ads


# --- refinement ------------------------------------------------------------------------


def test_refine_messages_quote_the_variant() -> None:
    v = good_xhs()
    for action in ACTIONS:
        text = refine_message(action, v, XHS, 2)
        assert "option 2" in text.lower() and "夏日防晒好物分享" in text
    assert "shorter" in refine_message("shorter", v, XHS, 1).lower()
    assert "English" in refine_message("translate", v, XHS, 1)
    assert target_language(Variant(body="Hello there")) == "zh"
    with pytest.raises(ValueError):
        refine_message("louder", v, XHS, 1)


def test_translation_drops_character_limits_of_the_other_language() -> None:
    style = translation_style(XHS, good_xhs())
    assert style.language == "en" and style.constraints.title_max is None
    assert style.constraints.hashtags_max == XHS.constraints.hashtags_max
    assert translation_style(XHS, Variant(body="Hello")) is XHS
