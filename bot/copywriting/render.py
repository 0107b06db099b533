"""Variants as Markdown for the user (never raw JSON), numbered so that buttons and console
commands ("refine 2 shorter") can point at one. Under each variant: the limits it still breaks
and, when copy was checked, its compliance verdict (``review.verdict_lines``)."""

from __future__ import annotations

from bot.copywriting.styles import BODY, HASHTAGS, ITEMS, SEGMENTS, TITLE, Style
from bot.copywriting.variants import Variant

# By variant number: the lines shown under it (its compliance verdict), and whether it failed.
Verdicts = dict[int, tuple[list[str], bool]]


def variant_label(style: Style, number: int) -> str:
    return f"方案 {number}" if style.language == "zh" else f"Option {number}"


def format_hashtags(tags: list[str], style: Style) -> str:
    if style.constraints.hashtag_format == "weibo":
        return " ".join(f"#{t}#" for t in tags)
    return " ".join(f"#{t}" for t in tags)


def render_variant(
    variant: Variant,
    style: Style,
    number: int,
    notes: list[str] | None = None,
    verdict: tuple[list[str], bool] | None = None,
) -> str:
    """One variant: a bold numbered heading line, then its fields in the style's order."""
    zh = style.language == "zh"
    heading = f"**{variant_label(style, number)}**"
    if TITLE in style.fields and variant.title:
        heading += f" · **{variant.title}**"
    if verdict is not None and verdict[1]:
        heading += " ⛔"
    lines = [heading]
    if BODY in style.fields and variant.body:
        lines += ["", variant.body.strip()]
    if ITEMS in style.fields and variant.items:
        lines += [""] + [f"- {item}" for item in variant.items]
    if SEGMENTS in style.fields and variant.segments:
        lines.append("")
        for seg in variant.segments:
            cue = f"**{seg.time}** " if seg.time else ""
            visual = f"🎬 {'画面' if zh else 'Visual'}：{seg.visual} " if seg.visual else ""
            lines.append(f"- {cue}{visual}🎙 {'口播' if zh else 'Voice'}：{seg.voice}")
    if HASHTAGS in style.fields and variant.hashtags:
        lines += ["", format_hashtags(variant.hashtags, style)]
    if notes:
        prefix = "⚠️ 仍未满足：" if zh else "⚠️ Still outside the limits: "
        lines += ["", f"_{prefix}{'; '.join(notes)}_"]
    if verdict is not None and verdict[0]:
        lines += ["", *verdict[0]]
    return "\n".join(lines)


def render_variants(
    variants: list[Variant],
    style: Style,
    notes: dict[int, list[str]] | None = None,
    *,
    first_number: int = 1,
    verdicts: Verdicts | None = None,
) -> str:
    """All variants, separated by blank lines; ``notes`` maps a variant number to the limits
    it still breaks (shown under it); ``verdicts`` gives each number's compliance lines."""
    notes = notes or {}
    blocks = [
        render_variant(v, style, n, notes.get(n), (verdicts or {}).get(n)) for n, v in enumerate(variants, first_number)
    ]
    return "\n\n\n".join(blocks)
