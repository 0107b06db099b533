"""Findings as people read them in a chat: short Markdown lines, in Chinese or English.

``finding_line`` is one finding (the phrase as written, what kind of claim it is, the suggested
rewrite); ``check_report`` is the whole answer to ``/check``. The phrase is quoted exactly, with
Markdown's own characters escaped so an evasion such as ``最*佳`` shows as written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.compliance.findings import Category, Finding, Severity

_LABELS_EN = {
    Category.ABSOLUTE: "absolute claim",
    Category.GUARANTEE: "guarantee",
    Category.EFFICACY: "efficacy/medical claim",
    Category.URGENCY: "urgency",
    Category.PRICE: "price claim",
    Category.PLATFORM: "platform rule",
    Category.BRAND_WORD: "brand's never-use word",
    Category.BRAND_FACT: "contradicts the brand profile",
    Category.CUSTOM: "house rule",
}
_MARKDOWN = re.compile(r"([\\`*_\[\]~<>|#])")
MAX_LISTED = 20  # findings listed in one answer; the rest are counted


def escape(text: str) -> str:
    """``text`` shown literally inside Markdown (one line)."""
    return _MARKDOWN.sub(r"\\\1", " ".join(text.split()))


def category_label(category: Category, language: str) -> str:
    return category.label_zh if language == "zh" else _LABELS_EN[category]


def rewrite(finding: Finding, language: str) -> str:
    """ " → 「出色」", " → 删除", or "" when no rewrite is offered."""
    if finding.suggestion is None:
        return ""
    if finding.suggestion == "":
        return " → 删除" if language == "zh" else " → delete it"
    return f" → 「{escape(finding.suggestion)}」"


def finding_line(finding: Finding, language: str) -> str:
    """``「最佳」绝对化用语 → 「出色」``; a review finding says a person decides."""
    review = finding.severity is Severity.REVIEW
    if language == "zh":
        note = "（请人工确认）" if review else ""
        return f"「{escape(finding.phrase)}」{category_label(finding.category, 'zh')}{note}{rewrite(finding, 'zh')}"
    note = " (review)" if review else ""
    return f"「{escape(finding.phrase)}」 {category_label(finding.category, 'en')}{note}{rewrite(finding, 'en')}"


def counts(findings: Sequence[Finding], language: str) -> str:
    """ "2 处须修改，1 处请人工确认" / "2 to fix, 1 to review"."""
    must = sum(f.severity is Severity.MUST_FIX for f in findings)
    review = len(findings) - must
    if language == "zh":
        parts = (f"{must} 处须修改" if must else "", f"{review} 处请人工确认" if review else "")
        return "，".join(p for p in parts if p)
    return ", ".join(p for p in (f"{must} to fix" if must else "", f"{review} to review" if review else "") if p)


def check_report(findings: Sequence[Finding], language: str, *, context: str = "") -> str:
    """The answer to ``/check``: a verdict line, then each finding with why (``context`` names
    the style and brand the text was checked against)."""
    zh = language == "zh"
    where = f"（{context}）" if zh and context else f" ({context})" if context else ""
    if not findings:
        return (
            f"✅ **合规检查{where}**：没有发现违规用语。" if zh else f"✅ **Compliance check{where}**: nothing found."
        ) + _disclaimer(zh)
    must = any(f.severity is Severity.MUST_FIX for f in findings)
    mark = "⛔" if must else "⚠️"
    lines = [
        f"{mark} **合规检查{where}**：{counts(findings, 'zh')}"
        if zh
        else f"{mark} **Compliance check{where}**: {counts(findings, 'en')}",
        "",
    ]
    for number, finding in enumerate(findings[:MAX_LISTED], 1):
        why = finding.explanation_zh if zh else (finding.explanation_en or finding.explanation_zh)
        lines.append(f"{number}. {finding_line(finding, language)}")
        if why:
            lines.append(f"   _{escape(why)}_")
    if len(findings) > MAX_LISTED:
        rest = len(findings) - MAX_LISTED
        lines.append(f"…另有 {rest} 处" if zh else f"…and {rest} more")
    return "\n".join(lines) + _disclaimer(zh)


def _disclaimer(zh: bool) -> str:
    return (
        "\n\n_按广告法与平台规则的用语检查，不构成法律意见；发布前请人工确认。_"
        if zh
        else "\n\n_A wording check against advertising law and platform rules, not legal advice; "
        "a person signs off before anything is published._"
    )
