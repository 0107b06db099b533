"""Ask the model for N variants, validate them, repair once, fix broken limits once, and
repair compliance once.

1. The request carries ``response_format`` (when the model supports structured output) and
   the same format in words at the end of the newest user message (some M2 versions ignore
   ``response_format``; the stable prefix of the prompt is not touched).
2. The answer is parsed (reasoning stripped, JSON extracted and repaired, variants
   validated). Unusable → one corrective retry quoting the problems.
3. Variants that break the style's limits (counted in code) go back once, only those, to be
   fixed. A fix is kept when it breaks fewer limits than the original.
4. With a ``Checker`` (``review.py``), every variant is checked against advertising law, the
   platform's rules and the brand; the flagged ones go back once, only those, with their flagged
   phrases quoted, to be rewritten. A rewrite is kept when it has fewer findings (must-fix first)
   and breaks no more limits; then every variant is checked again.
5. Whatever still breaks a limit is shown with a note, and every variant with its compliance
   verdict (a variant with a must-fix finding is marked as failed); if no usable variant came
   back at all, ``CopyResult.ok`` is False and ``markdown`` is a clear sentence, never raw JSON.

Gateway failures (``GatewayError``) are not caught: the core reports them like any turn's —
except in the compliance repair round, whose failure leaves the variants as they were, shown
with their findings (the answer is not lost for want of a rewrite).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.config import Settings
from bot.copywriting.constraints import check_variant, check_variants
from bot.copywriting.render import render_variants, variant_label
from bot.copywriting.review import Checker, ReviewVerdict, better, repair_prompt, verdict_lines
from bot.copywriting.schema import format_instruction, response_format
from bot.copywriting.structured import Parsed, parse_variants, strip_reasoning
from bot.copywriting.styles import Style
from bot.copywriting.variants import Variant
from bot.gateway.errors import GatewayError
from bot.gateway.events import ChatRequest, Usage

log = logging.getLogger(__name__)

MAX_QUOTED_ANSWER = 6_000  # characters of a broken answer echoed back in the retry


class CopyGateway(Protocol):
    async def complete(self, request: ChatRequest) -> Any: ...


Progress = Callable[[str], Awaitable[None]]


@dataclass(slots=True)
class CopyResult:
    ok: bool  # at least one usable variant
    variants: list[Variant]
    markdown: str  # what the user sees: rendered variants (+ notes), or the failure sentence
    notes: dict[int, list[str]] = field(default_factory=dict)  # limits still broken, by number
    verdicts: dict[int, ReviewVerdict] = field(default_factory=dict)  # compliance, by number (when checked)
    message: str = ""  # a problem worth telling the user ("" when all went well)
    calls: int = 0  # model calls made (1 to 4)
    usage: Usage = field(default_factory=Usage)  # summed over the calls
    reasoning: str = ""  # the model's thinking (store it, don't show it)
    finish_reason: str = ""
    texts: list[str] = field(default_factory=list)  # raw answers, for the log/debugging

    def variant_dicts(self) -> list[dict[str, Any]]:
        return [v.to_dict() for v in self.variants]


def with_instruction(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """A copy of ``messages`` with ``text`` appended to the newest user message (a new user
    message if the last message isn't one). The caller's list is not changed."""
    out = [dict(m) for m in messages]
    if out and out[-1].get("role") == "user":
        last = out[-1]
        content = last.get("content")
        if isinstance(content, list):
            last["content"] = [*content, {"type": "text", "text": text}]
        else:
            last["content"] = f"{content}\n\n{text}" if content else text
    else:
        out.append({"role": "user", "content": text})
    return out


def _failure_text(style: Style) -> str:
    if style.language == "zh":
        return "抱歉，模型连续两次没有按要求的格式给出文案。请再试一次，或把需求换个说法。"
    return "Sorry, the model twice failed to return the copy in a usable form. Please try again, or rephrase the brief."


def _short_text(style: Style, got: int, wanted: int) -> str:
    if style.language == "zh":
        return f"只得到 {got} 个可用方案（要求 {wanted} 个）。"
    return f"Only {got} of the {wanted} requested options came back usable."


class _Calls:
    def __init__(self, gateway: CopyGateway, style: Style, structured: bool, max_tokens: int | None) -> None:
        self.gateway, self.style, self.structured, self.max_tokens = gateway, style, structured, max_tokens
        self.count = 0
        self.usage = Usage()
        self.reasoning: list[str] = []
        self.texts: list[str] = []
        self.finish_reason = ""

    async def ask(self, messages: list[dict[str, Any]], n: int) -> Parsed:
        fmt = response_format(self.style, n) if self.structured else None
        reply = await self.gateway.complete(
            ChatRequest(messages=messages, response_format=fmt, max_tokens=self.max_tokens)
        )
        self.count += 1
        text = getattr(reply, "text", "") or ""
        self.texts.append(text)
        if getattr(reply, "reasoning", ""):
            self.reasoning.append(reply.reasoning)
        self.finish_reason = getattr(reply, "finish_reason", "") or ""
        usage = getattr(reply, "usage", None)
        if usage is not None:
            self.usage = Usage(
                self.usage.prompt_tokens + usage.prompt_tokens,
                self.usage.completion_tokens + usage.completion_tokens,
                self.usage.cached_tokens + usage.cached_tokens,
            )
        parsed = parse_variants(text, self.style, n)
        if self.finish_reason == "length":
            parsed.problems.append("the answer was cut off at the length limit; keep it more concise")
        return parsed


def _retry_prompt(parsed: Parsed, n: int) -> str:
    problems = "; ".join(parsed.problems) or "the answer could not be read"
    return (
        f"Your answer could not be used: {problems}. Reply again with only the JSON object "
        f'{{"variants": [...]}} holding exactly {n} complete variants with the fields described '
        "above: no prose, no code fences, no comments."
    )


def _fix_prompt(style: Style, violations: dict[int, list[str]]) -> str:
    lines = [f"Some options break the platform limits of {style.name_en} ({style.name_zh}):"]
    for number, problems in violations.items():
        lines.append(f"- {variant_label(style, number)}: " + "; ".join(problems))
    numbers = ", ".join(str(n) for n in violations)
    lines.append(
        f"Rewrite only option(s) {numbers} so they fit every limit (characters are counted as users "
        "see them; an emoji or a Chinese character counts one), keeping their idea and tone. Reply with "
        f'only the JSON object {{"variants": [...]}} holding exactly {len(violations)} variant(s), in the '
        "order listed."
    )
    return "\n".join(lines)


async def write_variants(
    gateway: CopyGateway,
    messages: list[dict[str, Any]],
    style: Style,
    n: int | None = None,
    settings: Settings | None = None,
    *,
    progress: Progress | None = None,
    max_tokens: int | None = None,
    checker: Checker | None = None,
) -> CopyResult:
    """Ask for ``n`` variants of ``style`` (default ``settings.copy_variants``) after the prompt
    ``messages`` (system prompt with the style, history, the brief as the last user message).
    ``progress`` (optional) gets short status lines before a retry or a fix round; ``checker``
    (optional) checks compliance and drives the repair round."""
    wanted = n or (getattr(settings, "copy_variants", None) or 3)
    structured = bool(getattr(settings, "structured_output", True))
    calls = _Calls(gateway, style, structured, max_tokens)
    convo = with_instruction(messages, format_instruction(style, wanted))

    parsed = await calls.ask(convo, wanted)
    if not parsed.ok:
        visible = strip_reasoning(calls.texts[-1])
        # The problems quote the model's text: details at DEBUG only (no message text at INFO).
        log.info("copy: unusable answer (%d problem(s)); retrying once", len(parsed.problems))
        log.debug("copy: unusable answer: %s", "; ".join(parsed.problems))
        if progress:
            await progress("retrying…")
        retry = convo + ([{"role": "assistant", "content": visible[:MAX_QUOTED_ANSWER]}] if visible else [])
        retry.append({"role": "user", "content": _retry_prompt(parsed, wanted)})
        second = await calls.ask(retry, wanted)
        if second.variants and (len(second.variants) >= len(parsed.variants)):
            parsed = second
    variants = parsed.variants
    if not variants:
        message = _failure_text(style)
        return CopyResult(
            False,
            [],
            message,
            message=message,
            calls=calls.count,
            usage=calls.usage,
            reasoning="\n\n".join(calls.reasoning),
            finish_reason=calls.finish_reason,
            texts=calls.texts,
        )

    violations = check_variants(variants, style)
    if violations:
        log.info("copy: %d variant(s) break limits; asking for a fix", len(violations))
        if progress:
            await progress("fixing length limits…")
        answer = json.dumps({"variants": [v.to_dict() for v in variants]}, ensure_ascii=False)
        fix = convo + [
            {"role": "assistant", "content": answer},
            {"role": "user", "content": _fix_prompt(style, violations)},
        ]
        fixed = await calls.ask(fix, len(violations))
        numbers = list(violations)
        for position, new in zip(fixed.positions, fixed.variants):
            number = numbers[position - 1]
            if len(check_variant(new, style)) < len(violations[number]):
                variants[number - 1] = new
        violations = check_variants(variants, style)

    verdicts: dict[int, ReviewVerdict] = {}
    if checker is not None:
        verdicts = await _comply(calls, convo, variants, style, checker, progress)
        violations = check_variants(variants, style)

    message = _short_text(style, len(variants), wanted) if len(variants) < wanted else ""
    shown = {n: (verdict_lines(v, style.language), v.failed) for n, v in verdicts.items()}
    markdown = render_variants(variants, style, violations, verdicts=shown)
    if message:
        markdown += f"\n\n_{message}_"
    return CopyResult(
        True,
        variants,
        markdown,
        notes=violations,
        verdicts=verdicts,
        message=message,
        calls=calls.count,
        usage=calls.usage,
        reasoning="\n\n".join(calls.reasoning),
        finish_reason=calls.finish_reason,
        texts=calls.texts,
    )


async def _comply(
    calls: _Calls,
    convo: list[dict[str, Any]],
    variants: list[Variant],
    style: Style,
    checker: Checker,
    progress: Progress | None,
) -> dict[int, ReviewVerdict]:
    """Check every variant; send the flagged ones back once with their phrases quoted; keep a
    rewrite that is better and breaks no more limits. ``variants`` is updated in place."""
    found = {number: checker.findings(v) for number, v in enumerate(variants, 1)}
    flagged = {number: f for number, f in found.items() if f}
    repaired: dict[int, int] = {}
    if flagged:
        log.info("copy: %d variant(s) flagged by the compliance check; asking for a rewrite", len(flagged))
        if progress:
            await progress("合规修改中…" if style.language == "zh" else "fixing compliance…")
        answer = json.dumps({"variants": [v.to_dict() for v in variants]}, ensure_ascii=False)
        fix = convo + [
            {"role": "assistant", "content": answer},
            {"role": "user", "content": repair_prompt(style, flagged)},
        ]
        try:
            fixed = await calls.ask(fix, len(flagged))
        except GatewayError as exc:
            log.warning("copy: the compliance repair call failed (%s); showing the findings", exc.log_message)
            fixed = Parsed()
        numbers = list(flagged)
        for position, new in zip(fixed.positions, fixed.variants):
            number = numbers[position - 1]
            now = checker.findings(new)
            old = variants[number - 1]
            if better(now, found[number]) and len(check_variant(new, style)) <= len(check_variant(old, style)):
                repaired[number] = max(1, len(found[number]) - len(now))
                variants[number - 1] = new
                found[number] = now
    return {number: ReviewVerdict(found[number], repaired.get(number, 0)) for number in found}
