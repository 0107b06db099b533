"""One-tap refinements of a chosen variant, as the instruction for the next model call.

The core appends ``refine_message(...)`` as a user message after the conversation (the
chosen variant is quoted in it, so the model has it in context even if history was
trimmed) and calls ``flow.write_variants(..., n=1)`` (``REFINE_VARIANTS``) with the same style.
"Fix compliance" (``COMPLY``) is offered on variants the compliance check flagged; its message
quotes the flagged phrases (``review.comply_instruction``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

from bot.compliance.findings import Finding
from bot.copywriting.review import comply_instruction
from bot.copywriting.styles import Constraints, Style
from bot.copywriting.variants import Variant

ACTIONS = ("shorter", "longer", "playful", "formal", "translate", "regenerate")  # offered on every variant
COMPLY = "comply"  # offered on a variant with compliance findings
ALL_ACTIONS = (*ACTIONS, COMPLY)
REFINE_VARIANTS = 1  # a refinement answers with one revised variant

LABELS: dict[str, tuple[str, str]] = {  # action -> (Chinese, English) button label
    "shorter": ("更短", "Shorter"),
    "longer": ("更长", "Longer"),
    "playful": ("更活泼", "More playful"),
    "formal": ("更正式", "More formal"),
    "translate": ("翻译", "Translate"),
    "regenerate": ("换一版", "Regenerate"),
    COMPLY: ("合规修改", "Fix compliance"),
}

_INSTRUCTIONS = {
    "shorter": "Make it noticeably shorter (about half the length) and punchier; keep the key message, "
    "the facts and the call to action.",
    "longer": "Make it richer and longer (about half again as long) with concrete details, scenes or "
    "examples, while staying within the platform limits.",
    "playful": "Make the tone more playful and lively: more personality, wordplay, light humour and "
    "fitting emoji, without losing the facts.",
    "formal": "Make the tone more formal and polished: professional wording, fewer emoji and "
    "exclamation marks, no slang.",
    "regenerate": "Write a fresh alternative to it: a different angle, hook and wording, same brief and same facts.",
}


class UnknownAction(ValueError):
    pass


def language_of(text: str) -> str:
    """ "zh" when Chinese characters make up a good share of ``text`` (for control labels)."""
    letters = [ch for ch in text if ch.isalpha()]
    cjk = sum(1 for ch in letters if "\u4e00" <= ch <= "\u9fff")
    return "zh" if letters and cjk >= 0.3 * len(letters) else "en"


def label(action: str, language: str = "en") -> str:
    zh, en = LABELS[action]
    return zh if language == "zh" else en


def target_language(variant: Variant) -> str:
    """Translate goes Chinese → English and anything else → Chinese."""
    text = variant.title + variant.body + "".join(variant.items) + "".join(s.voice for s in variant.segments)
    cjk = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")
    return "en" if cjk * 3 >= max(1, len(text)) * 0.5 else "zh"


def refine_message(action: str, variant: Variant, style: Style, number: int, findings: Sequence[Finding] = ()) -> str:
    """The user-message text asking the model to refine variant ``number`` (``findings``: what
    the compliance check flagged in it, for ``COMPLY``)."""
    if action not in ALL_ACTIONS:
        raise UnknownAction(f"unknown refinement {action!r}; use one of {', '.join(ALL_ACTIONS)}")
    if action == COMPLY:
        what = comply_instruction(findings)
    elif action == "translate":
        lang = target_language(variant)
        what = (
            "Translate it into natural, idiomatic English for the same platform (adapt, don't "
            "translate word by word; hashtags in English)."
            if lang == "en"
            else "把它翻译成地道的中文，适合同一平台（意译而不是逐字翻译，话题标签也用中文）。"
        )
    else:
        what = _INSTRUCTIONS[action]
    quoted = json.dumps(variant.to_dict(), ensure_ascii=False)
    return (
        f"Refine option {number} of your copy. {what}\n"
        f"Option {number} was:\n{quoted}\n"
        "Keep the same style and its limits."
    )


def translation_style(style: Style, variant: Variant) -> Style:
    """The style to check a translation of ``variant`` against: unchanged when the translation
    is in the style's own language; otherwise the same fields and counts but without the
    character limits (a 20-character Chinese title limit makes no sense for English)."""
    lang = target_language(variant)
    if lang == style.language:
        return style
    c = style.constraints
    counts = Constraints(
        hashtags_min=c.hashtags_min,
        hashtags_max=c.hashtags_max,
        hashtag_format=c.hashtag_format,
        items_min=c.items_min,
        items_max=c.items_max,
        script_seconds_max=c.script_seconds_max,
    )
    return replace(style, language=lang, constraints=counts)
