"""From a model's answer to validated variants: strip reasoning, find the JSON, repair it,
normalise and validate each variant against the style.

Never raises on bad model output: ``parse_variants`` returns what it could use and a list
of problems worded for the model (the retry prompt quotes them).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from bot.copywriting.styles import BODY, HASHTAGS, ITEMS, SEGMENTS, TITLE, Style
from bot.copywriting.variants import Variant

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*(?:json|JSON|javascript)?[ \t]*\n?(.*?)```", re.DOTALL)
_CONTAINER_KEYS = ("variants", "options", "versions", "results", "outputs", "data", "方案", "版本", "variant")


def strip_reasoning(text: str) -> str:
    """Remove ``<think>…</think>`` blocks, everything before a lone ``</think>`` (servers that
    omit the opening tag) and an unclosed ``<think>`` to the end (a cut-off answer)."""
    text = _THINK_BLOCK.sub("", text)
    lower = text.lower()
    close = lower.rfind("</think>")
    if close != -1:
        text = text[close + len("</think>") :]
        lower = text.lower()
    opened = lower.find("<think>")
    if opened != -1:
        text = text[:opened]
    return text.strip()


def _balanced_span(text: str, start: int) -> str:
    """The JSON value starting at ``start`` up to its matching bracket (or the end of text
    if it never closes: json-repair can finish a truncated value)."""
    stack: list[str] = []
    in_string = escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if stack and stack[-1] == ch:
                stack.pop()
                if not stack:
                    return text[start : i + 1]
    return text[start:]


def _candidates(text: str) -> list[str]:
    found = [m.group(1).strip() for m in _FENCE.finditer(text)]
    found.append(text.strip())
    for opener in ("{", "["):
        idx = text.find(opener)
        if idx != -1:
            found.append(_balanced_span(text, idx))
    return [c for c in dict.fromkeys(found) if c and c[0] in "{["]


def extract_json(text: str) -> Any | None:
    """The first JSON object or array in ``text`` (fenced, bare or inside prose), repaired
    if broken. None when there is nothing JSON-like."""
    candidates = _candidates(text)
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            pass
    import json_repair  # only for a model's broken JSON: not loaded at start (memory)

    for candidate in candidates:
        try:
            value = json_repair.loads(candidate)
        except Exception:  # noqa: BLE001 - json-repair is best effort; a failure just means "no JSON here"
            continue
        if isinstance(value, (dict, list)) and value:
            return value
    return None


def _variant_objects(value: Any) -> list[Any] | None:
    if isinstance(value, list):
        return value
    if not isinstance(value, dict):
        return None
    lowered = {str(k).strip().lower(): v for k, v in value.items()}
    for key in _CONTAINER_KEYS:
        if isinstance(lowered.get(key), list):
            return lowered[key]
        if isinstance(lowered.get(key), dict):
            return [lowered[key]]
    lists = [v for v in value.values() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)]
    if len(value) == 1 and len(lists) == 1:
        return lists[0]
    return [value]  # a single variant without the wrapper


def validate_variant(variant: Variant, style: Style) -> list[str]:
    """Missing or empty fields the style needs (counts and lengths are constraints, not here)."""
    problems = []
    for name in style.fields:
        if name == TITLE and not variant.title and not style.is_custom:
            problems.append("missing title")
        elif name == BODY and not variant.body:
            problems.append("missing body")
        elif name == ITEMS and not variant.items:
            problems.append("missing items (a list of strings)")
        elif name == SEGMENTS:
            if not variant.segments:
                problems.append("missing segments (a list of {time, visual, voice})")
            elif any(not s.voice for s in variant.segments):
                problems.append("a segment has no voice line")
        elif name == HASHTAGS:
            pass  # how many is a constraint
    return problems


@dataclass(slots=True)
class Parsed:
    variants: list[Variant] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # for the retry prompt
    found_json: bool = False
    positions: list[int] = field(default_factory=list)  # 1-based place of each variant in the answer

    @property
    def ok(self) -> bool:
        return bool(self.variants) and not self.problems


def parse_variants(text: str, style: Style, n: int) -> Parsed:
    """Validated variants from a model answer. Extra variants beyond ``n`` are dropped."""
    value = extract_json(strip_reasoning(text))
    if value is None:
        return Parsed(problems=["the answer contained no JSON object"])
    objects = _variant_objects(value)
    result = Parsed(found_json=True)
    if not objects:
        result.problems.append('no variants found: expected {"variants": [...]}')
        return result
    for number, obj in enumerate(objects[:n], 1):
        if isinstance(obj, str) and BODY in style.fields:
            obj = {"body": obj}
        if not isinstance(obj, dict):
            result.problems.append(f"variant {number} is not an object")
            continue
        variant = Variant.from_raw(obj)
        problems = validate_variant(variant, style)
        if problems:
            result.problems.append(f"variant {number}: " + ", ".join(problems))
        else:
            result.variants.append(variant)
            result.positions.append(number)
    if result.variants and len(objects) < n:
        result.problems.append(f"expected {n} variants, got {len(objects)}")
    return result
