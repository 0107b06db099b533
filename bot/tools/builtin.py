"""Built-in tools that help with copywriting: the time, a calculator, text statistics."""

from __future__ import annotations

import ast
import math
import operator
import re
import unicodedata
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config import Settings
from bot.copywriting.measure import (
    char_count,
    emoji_count,
    find_hashtags,
    is_cjk,
    weighted_length,
    word_count,
)
from bot.tools.registry import Tool, ToolError

# --- date and time ---------------------------------------------------------------------

_WEEKDAYS_ZH = "一二三四五六日"


def current_time(zone: str, now: datetime | None = None) -> str:
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(f"unknown time zone {zone!r}; use an IANA name like Asia/Shanghai") from None
    moment = (now or datetime.now(tz)).astimezone(tz)
    offset = moment.strftime("%z")
    return (
        f"{moment:%Y-%m-%d %H:%M:%S} {moment:%A} (星期{_WEEKDAYS_ZH[moment.weekday()]}), "
        f"time zone {zone} (UTC{offset[:3]}:{offset[3:]})"
    )


# --- calculator --------------------------------------------------------------------------

MAX_EXPRESSION = 300
MAX_NODES = 200
MAX_INT_BITS = 4_096  # about 1,200 decimal digits
MAX_EXPONENT = 10_000

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt,
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "floor": math.floor,
    "ceil": math.ceil,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%(?!\s*[\d(.])")


def _check_size(value: Any) -> Any:
    if isinstance(value, complex):
        raise ToolError("the result is not a real number")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ToolError("the number is too large")
    if isinstance(value, float) and math.isinf(value):
        raise ToolError("the result is too large")
    return value


def _power(base: Any, exponent: Any) -> Any:
    if abs(exponent) > MAX_EXPONENT:
        raise ToolError(f"the exponent is too large (limit {MAX_EXPONENT})")
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        if exponent * math.log2(abs(base)) > MAX_INT_BITS:
            raise ToolError("the result would be too large")
    return base**exponent


def _eval(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _check_size(node.value)
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            return _check_size(_power(left, right))
        return _check_size(_BINARY[type(node.op)](left, right))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        return _check_size(_FUNCTIONS[node.func.id](*(_eval(a) for a in node.args)))
    raise ToolError(
        f"unsupported element in the expression: {type(node).__name__}"
        + (f" {node.id!r}" if isinstance(node, ast.Name) else "")
    )


def _format(value: Any) -> str:
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.12g}"
    return str(value)


def calculate(expression: str) -> str:
    """Evaluate arithmetic safely: numbers, + - * / // % **, parentheses, a few math
    functions. No names, attributes or calls beyond those; bounded sizes."""
    text = unicodedata.normalize("NFKC", expression or "").strip()
    text = text.replace("×", "*").replace("÷", "/").replace("^", "**").replace("−", "-")
    text = _PERCENT.sub(r"(\1/100)", text)
    if not text:
        raise ToolError("the expression is empty")
    if len(text) > MAX_EXPRESSION:
        raise ToolError(f"the expression is longer than {MAX_EXPRESSION} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        raise ToolError(f"could not parse {expression!r} as arithmetic") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ToolError("the expression is too complex")
    try:
        value = _eval(tree)
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except OverflowError:
        raise ToolError("the result is too large") from None
    except (ValueError, TypeError) as exc:
        raise ToolError(f"math error: {exc}") from None
    return f"{expression.strip()} = {_format(value)}"


# --- text statistics ---------------------------------------------------------------------

# name -> (limit, how it is counted, what it is). Lengths in user-perceived characters
# unless the platform weighs them (X/Twitter: CJK and emoji count 2, URLs 23).
PLATFORM_LIMITS: dict[str, tuple[int, Callable[[str], int], str]] = {
    "xiaohongshu_title": (20, char_count, "Xiaohongshu note title"),
    "xiaohongshu_body": (1000, char_count, "Xiaohongshu note body"),
    "weibo": (2000, char_count, "Weibo post (the first 140 show before 'expand')"),
    "twitter": (280, weighted_length, "X/Twitter post, weighted count"),
    "linkedin": (3000, char_count, "LinkedIn post"),
    "wechat_article_title": (64, char_count, "WeChat Official Account article title"),
}


def text_stats(text: str, platform: str | None = None) -> dict[str, Any]:
    if platform and platform not in PLATFORM_LIMITS:
        raise ToolError(f"unknown platform {platform!r}; known: {', '.join(PLATFORM_LIMITS)}")
    stats: dict[str, Any] = {
        "characters": char_count(text),
        "characters_without_spaces": char_count(re.sub(r"\s+", "", text)),
        "cjk_characters": sum(1 for ch in text if is_cjk(ch)),
        "words": word_count(text),
        "lines": text.count("\n") + 1 if text else 0,
        "emoji": emoji_count(text),
        "hashtags": find_hashtags(text),
        "note": "characters are counted as users see them: a Chinese character or an emoji is one",
    }
    names = [platform] if platform else list(PLATFORM_LIMITS)
    limits = {}
    for name in names:
        limit, measure, what = PLATFORM_LIMITS[name]
        used = measure(text)
        limits[name] = {"what": what, "limit": limit, "used": used, "fits": used <= limit}
    stats["platform_limits"] = limits
    return stats


def builtin_tools(settings: Settings) -> list[Tool]:
    zone = settings.timezone or "UTC"

    async def now(timezone: str | None = None) -> str:
        return current_time(timezone or zone)

    async def calc(expression: str) -> str:
        return calculate(expression)

    async def stats(text: str, platform: str | None = None) -> dict[str, Any]:
        return text_stats(text, platform)

    return [
        Tool(
            "current_time",
            f"The current date, time and weekday. Default time zone: {zone}.",
            {
                "type": "object",
                "properties": {
                    "timezone": {"type": "string", "description": "IANA time zone, e.g. Asia/Shanghai (optional)"}
                },
            },
            now,
            label="clock",
        ),
        Tool(
            "calculator",
            "Exact arithmetic: + - * / // % ** and parentheses, percentages like 85%, and sqrt, abs, "
            "round, min, max, log, log10, log2, exp, sin, cos, tan, floor, ceil, pi, e.",
            {
                "type": "object",
                "required": ["expression"],
                "properties": {"expression": {"type": "string", "description": "e.g. (299 - 199) / 299 * 100"}},
            },
            calc,
            label="calculator",
        ),
        Tool(
            "text_stats",
            "Count a text as platforms do: characters (a Chinese character or an emoji counts one), "
            "CJK characters, words, lines, emoji, hashtags, and fit against platform limits "
            f"({', '.join(PLATFORM_LIMITS)}). Use it to check copy before presenting it.",
            {
                "type": "object",
                "required": ["text"],
                "properties": {
                    "text": {"type": "string"},
                    "platform": {
                        "type": "string",
                        "enum": list(PLATFORM_LIMITS),
                        "description": "only this platform's limit (optional)",
                    },
                },
            },
            stats,
            label="text statistics",
        ),
    ]
