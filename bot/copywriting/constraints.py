"""Platform limits checked in code, with violations worded so the model can fix them.

Lengths are user-perceived characters (measure.char_count: a CJK character, a letter or a
whole emoji each count one). Hashtags are counted from the variant's ``hashtags`` list plus
any written inline in the body, without duplicates.
"""

from __future__ import annotations

import re

from bot.copywriting.measure import char_count, emoji_count, find_hashtags
from bot.copywriting.styles import BODY, HASHTAGS, ITEMS, SEGMENTS, TITLE, Style
from bot.copywriting.variants import Segment, Variant

_CUE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:s|秒)?\s*[-–—~～至到]\s*(\d+(?:\.\d+)?)\s*(?:s|秒|sec)?\s*$", re.I)
MAX_HASHTAG_CHARS = 30


def all_hashtags(variant: Variant) -> list[str]:
    return list(dict.fromkeys([*variant.hashtags, *find_hashtags(variant.body)]))


def _too_long(what: str, text: str, limit: int) -> str | None:
    n = char_count(text)
    if n > limit:
        return f"{what} is {n} characters; the limit is {limit} (cut {n - limit})"
    return None


def _script_problems(segments: list[Segment], style: Style) -> list[str]:
    c = style.constraints
    problems = []
    last_end = 0.0
    for i, seg in enumerate(segments, 1):
        match = _CUE.match(seg.time or "")
        if not match:
            problems.append(f'segment {i} needs a time cue like "0-3s" (got {seg.time!r})')
            continue
        start, end = float(match.group(1)), float(match.group(2))
        if end <= start or start < last_end - 0.01:
            problems.append(f"segment {i} time cue {seg.time!r} does not follow the previous one")
        last_end = max(last_end, end)
    if c.script_seconds_max and last_end > c.script_seconds_max:
        problems.append(f"the script runs {last_end:g} s; the limit is {c.script_seconds_max} s")
    if c.voice_max:
        spoken = sum(char_count(s.voice) for s in segments)
        if spoken > c.voice_max:
            problems.append(f"the voice-over is {spoken} characters; the limit is {c.voice_max}")
    return problems


def check_variant(variant: Variant, style: Style) -> list[str]:
    """Human-readable violations of ``style``'s limits (empty when the variant fits)."""
    c = style.constraints
    problems: list[str | None] = []
    if TITLE in style.fields and c.title_max:
        problems.append(_too_long("the title", variant.title, c.title_max))
    if BODY in style.fields:
        if c.body_max:
            problems.append(_too_long("the body", variant.body, c.body_max))
        if c.body_min and char_count(variant.body) < c.body_min:
            problems.append(f"the body is {char_count(variant.body)} characters; write at least {c.body_min}")
        if c.emoji_min and emoji_count(variant.body + variant.title) < c.emoji_min:
            problems.append(f"use at least {c.emoji_min} emoji")
    if HASHTAGS in style.fields or c.hashtags_max == 0:
        tags = all_hashtags(variant)
        if c.hashtags_max is not None and len(tags) > c.hashtags_max:
            problems.append(
                "remove all hashtags" if c.hashtags_max == 0 else f"{len(tags)} hashtags; use at most {c.hashtags_max}"
            )
        if len(tags) < c.hashtags_min:
            problems.append(f"{len(tags)} hashtags; use at least {c.hashtags_min}")
        for tag in variant.hashtags:
            if re.search(r"\s", tag):
                problems.append(f"hashtag {tag!r} contains a space; hashtags are one word")
            elif char_count(tag) > MAX_HASHTAG_CHARS:
                problems.append(f"hashtag {tag!r} is longer than {MAX_HASHTAG_CHARS} characters")
    if ITEMS in style.fields:
        if c.items_min and len(variant.items) < c.items_min:
            problems.append(f"{len(variant.items)} items; write at least {c.items_min}")
        if c.items_max and len(variant.items) > c.items_max:
            problems.append(f"{len(variant.items)} items; write at most {c.items_max}")
        if c.item_max:
            for i, item in enumerate(variant.items, 1):
                problems.append(_too_long(f"item {i}", item, c.item_max))
    if SEGMENTS in style.fields:
        problems.extend(_script_problems(variant.segments, style))
    return [p for p in problems if p]


def check_variants(variants: list[Variant], style: Style) -> dict[int, list[str]]:
    """Violations by variant number (1-based); variants that fit are absent."""
    out = {}
    for number, variant in enumerate(variants, 1):
        problems = check_variant(variant, style)
        if problems:
            out[number] = problems
    return out
