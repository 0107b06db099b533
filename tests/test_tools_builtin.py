"""Built-in tools: time in the configured zone, a calculator that cannot be abused, text stats."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bot.config import Settings
from bot.gateway.events import ToolCall
from bot.tools import ToolError, build_registry
from bot.tools.builtin import calculate, current_time, text_stats


def test_current_time_in_a_zone() -> None:
    moment = datetime(2026, 11, 25, 16, 30, tzinfo=UTC)
    assert (
        current_time("Asia/Shanghai", moment)
        == "2026-11-26 00:30:00 Thursday (星期四), time zone Asia/Shanghai (UTC+08:00)"
    )
    with pytest.raises(ToolError, match="unknown time zone"):
        current_time("Mars/Olympus", moment)


async def test_clock_tool_uses_bot_timezone() -> None:
    reg = build_registry(Settings(_env_file=None, BOT_TIMEZONE="Asia/Tokyo"), plugins=False)  # type: ignore[call-arg]
    [result] = await reg.run_calls([ToolCall("c1", "current_time", "{}")], timeout=2)
    assert "time zone Asia/Tokyo (UTC+09:00)" in result
    [other] = await reg.run_calls([ToolCall("c2", "current_time", '{"timezone": "Europe/London"}')], timeout=2)
    assert "Europe/London" in other


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("1 + 2 * 3", "7"),
        ("(299 - 199) / 299 * 100", "33.4448160535"),
        ("199 * 85%", "169.15"),
        ("17 % 5", "2"),
        ("2 ** 10", "1024"),
        ("2^10", "1024"),
        ("（1＋2）×3÷4", "2.25"),
        ("sqrt(16) + round(2.567, 2)", "6.57"),
        ("max(3, 9, 4) - min(1, 2)", "8"),
        ("pi * 2", "6.28318530718"),
        ("0.1 + 0.2", "0.3"),
    ],
)
def test_calculator_answers(expression: str, expected: str) -> None:
    assert calculate(expression) == f"{expression} = {expected}"


@pytest.mark.parametrize(
    "expression, message",
    [
        ("__import__('os').system('id')", "unsupported"),
        ("().__class__.__bases__", "unsupported"),
        ("open('/etc/passwd')", "unsupported"),
        ("x + 1", "unsupported"),
        ("lambda: 1", "unsupported"),
        ("[1, 2] * 3", "unsupported"),
        ("'a' * 10", "unsupported"),
        ("9 ** 9 ** 9", "too large"),
        ("10 ** 5000", "too large"),
        ("2.0 ** 5000", "too large"),
        ("1e308 * 10", "too large"),
        ("1 / 0", "division by zero"),
        ("sqrt(-1)", "math error"),
        ("(-8) ** (1/3)", "not a real number"),
        ("1 +", "could not parse"),
        ("1" * 400, "longer than"),
        ("+".join(["1"] * 140), "too complex"),
        ("", "empty"),
    ],
)
def test_calculator_refuses_unsafe_or_huge(expression: str, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        calculate(expression)


def test_text_stats_counts_like_platforms() -> None:
    text = "夏日防晒🌞好物分享 #防晒 #好物 👨‍👩‍👧\nhello world"
    stats = text_stats(text)
    assert stats["characters"] == 31  # 8 Han + 4 Han in tags + 2 emoji + ASCII
    assert stats["cjk_characters"] == 12
    assert stats["words"] == 14
    assert stats["lines"] == 2
    assert stats["emoji"] == 2
    assert stats["hashtags"] == ["防晒", "好物"]
    limits = stats["platform_limits"]
    assert limits["xiaohongshu_title"] == {"what": "Xiaohongshu note title", "limit": 20, "used": 31, "fits": False}
    assert limits["xiaohongshu_body"]["fits"] is True
    assert limits["twitter"]["used"] > stats["characters"]  # CJK and emoji weigh 2
    assert list(text_stats("x", "weibo")["platform_limits"]) == ["weibo"]
    with pytest.raises(ToolError, match="unknown platform"):
        text_stats("x", "myspace")


async def test_text_stats_tool_returns_json() -> None:
    reg = build_registry(Settings(_env_file=None), plugins=False)  # type: ignore[call-arg]
    args = json.dumps({"text": "一二三", "platform": "xiaohongshu_title"}, ensure_ascii=False)
    [result] = await reg.run_calls([ToolCall("t", "text_stats", args)], timeout=2)
    data = json.loads(result)
    assert data["characters"] == 3 and data["platform_limits"]["xiaohongshu_title"]["fits"] is True
