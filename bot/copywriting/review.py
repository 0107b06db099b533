"""Copy variants against the compliance rules (``bot.compliance``): what the checker reads of a
variant, the repair round's request, and the verdict shown under each variant.

A variant's fields are checked one per line, so a word never runs across two fields. The
style's id picks the platform rules (a custom style has none); the chat's brand profile adds
its never-use words and facts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.compliance.brand import BrandProfile
from bot.compliance.engine import check
from bot.compliance.findings import Finding, Severity
from bot.compliance.report import counts, finding_line
from bot.compliance.rules import RuleSet, rules_for
from bot.copywriting.render import variant_label
from bot.copywriting.styles import Style
from bot.copywriting.variants import Variant
from bot.platform.messages import ConversationKey


class BrandSource(Protocol):
    async def profile(self, key: ConversationKey) -> BrandProfile | None:
        """The brand profile of ``key``'s chat, if it has one."""


def variant_text(variant: Variant) -> str:
    """Every field a reader sees, one per line (hashtags with their #)."""
    lines = [variant.title, variant.body, *variant.items]
    for segment in variant.segments:
        lines += [segment.visual, segment.voice]
    lines += [f"#{tag}" for tag in variant.hashtags]
    return "\n".join(line for line in lines if line)


@dataclass(frozen=True, slots=True)
class Checker:
    """The compliance check for one conversation's copy: its style's platform rules, its brand."""

    rules: RuleSet
    style: str | None = None  # a built-in style id (platform rules); None for a custom style
    brand: BrandProfile | None = None

    @classmethod
    def for_style(cls, style: Style, brand: BrandProfile | None, rules_dir: str = "") -> Checker:
        return cls(rules_for(rules_dir), None if style.is_custom else style.id, brand)

    def findings(self, variant: Variant) -> list[Finding]:
        return check(variant_text(variant), style=self.style, brand=self.brand, rules=self.rules)


def must_fix(findings: Sequence[Finding]) -> int:
    return sum(f.severity is Severity.MUST_FIX for f in findings)


def better(new: Sequence[Finding], old: Sequence[Finding]) -> bool:
    """Fewer must-fix findings, or as many and fewer in all."""
    return (must_fix(new), len(new)) < (must_fix(old), len(old))


@dataclass(slots=True)
class ReviewVerdict:
    """A variant's compliance as shown: what is still found, and how many phrases the automatic
    repair round rewrote."""

    findings: list[Finding] = field(default_factory=list)
    repaired: int = 0

    @property
    def failed(self) -> bool:
        """Something must still be fixed: never shown as clean."""
        return must_fix(self.findings) > 0

    def to_dict(self) -> dict[str, Any]:
        return {"findings": [f.to_dict() for f in self.findings], "repaired": self.repaired, "failed": self.failed}


def verdict_lines(verdict: ReviewVerdict, language: str) -> list[str]:
    """What stands under a variant: one verdict line, then each finding (compact)."""
    zh = language == "zh"
    fixed = (
        (f"（已自动改写 {verdict.repaired} 处）" if zh else f" ({verdict.repaired} rewritten automatically)")
        if verdict.repaired
        else ""
    )
    if not verdict.findings:
        return [f"_✅ 合规检查：未发现问题{fixed}_" if zh else f"_✅ Compliance check: nothing found{fixed}_"]
    if verdict.failed:
        head = (
            f"_⛔ 合规检查未通过：{counts(verdict.findings, 'zh')}{fixed}_"
            if zh
            else f"_⛔ Compliance check failed: {counts(verdict.findings, 'en')}{fixed}_"
        )
    else:
        head = (
            f"_⚠️ 合规：{counts(verdict.findings, 'zh')}{fixed}_"
            if zh
            else f"_⚠️ Compliance: {counts(verdict.findings, 'en')}{fixed}_"
        )
    return [head, *(f"- {finding_line(f, language)}" for f in verdict.findings)]


def _quoted(finding: Finding) -> str:
    if finding.suggestion is None:
        fix = "rewrite it without the claim"
    elif finding.suggestion == "":
        fix = "delete it"
    else:
        fix = f"suggested: {json.dumps(finding.suggestion, ensure_ascii=False)}"
    why = finding.explanation_en or finding.explanation_zh
    return f"  - {json.dumps(finding.phrase, ensure_ascii=False)} ({finding.rule}: {why}) → {fix}"


REWRITE_RULES = (
    "replace each quoted phrase with compliant wording (the suggestion, or your own that fits the sentence) or "
    "delete it; keep every other sentence, the facts and the tone as they are and stay within the platform "
    "limits; add no other absolute, guarantee, medical, urgency or price-comparison claim, no link or "
    "contact detail, nothing the brand never says."
)


def repair_prompt(style: Style, flagged: dict[int, list[Finding]]) -> str:
    """The automatic repair round: only the flagged spans of the flagged variants, quoted."""
    lines = [
        "The compliance check (Chinese Advertising Law, the platform's rules, the brand profile) flagged "
        "phrases in some options:"
    ]
    for number, findings in flagged.items():
        lines.append(f"- {variant_label(style, number)}:")
        lines += [_quoted(f) for f in findings]
    numbers = ", ".join(str(n) for n in flagged)
    lines.append(
        f"Rewrite only the quoted phrases of option(s) {numbers}: {REWRITE_RULES} Reply with only the "
        f'JSON object {{"variants": [...]}} holding exactly {len(flagged)} variant(s), in the order '
        "listed."
    )
    return "\n".join(lines)


def comply_instruction(findings: Sequence[Finding]) -> str:
    """The "fix compliance" refinement: the variant's flagged phrases, quoted."""
    quoted = "\n".join(_quoted(f) for f in findings)
    return f"The compliance check flagged these phrases in it:\n{quoted}\nRewrite only those phrases: {REWRITE_RULES}"
