"""``check``: every rule over a text, in one pass of the automaton plus the rules' patterns.

What decides a finding, in order:
1. a rule's term is found in the tight view (fold.py), as a whole word where it starts or ends
   with a Latin letter or a digit; or a rule's pattern matches its view;
2. the rule applies to the style (platform rules name their styles; the rest apply to all);
3. it is dropped when it lies inside one of that rule's allowed phrases ("第一" in "第一次"), or
   inside an exception (operators' lists, and the brand's own brand and product names: SAMR's
   guidance exempts names and trademarks);
4. of two findings where one lies inside the other, the inner one is dropped when the outer one is
   at least as severe ("最低" inside "全网最低价").
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

from bot.compliance.brand import BrandProfile
from bot.compliance.contradictions import brand_findings
from bot.compliance.findings import Finding, Severity
from bot.compliance.fold import Folded, fold, word_edges_ok
from bot.compliance.rules import EntryKind, Rule, RuleSet, compile_rules, default_rules


@dataclass(frozen=True, slots=True)
class _Hit:
    start: int  # original offsets
    end: int
    rule: int
    word: str  # the folded text matched, for its rewrite


def check(
    text: str, *, style: str | None = None, brand: BrandProfile | None = None, rules: RuleSet | None = None
) -> list[Finding]:
    """Findings in ``text``, ordered by position. ``style`` is a copy style id
    (``bot.copywriting.styles``); ``brand`` adds its never-use words and profile facts."""
    rules = rules if rules is not None else default_rules()
    if not text:
        return []
    folded = fold(text)
    hits, allowed, excepted = _scan(folded, rules, style)
    if brand is not None:
        excepted.extend(_brand_names(folded, brand))
    allowed_by_rule = {rule: _Cover(spans) for rule, spans in allowed.items()}
    nowhere = _Cover(excepted)
    kept = [
        h
        for h in hits
        if not (h.rule in allowed_by_rule and allowed_by_rule[h.rule].covers(h)) and not nowhere.covers(h)
    ]
    findings = [_finding(folded.original, h, rules.rules[h.rule]) for h in kept]
    if brand is not None:
        findings.extend(brand_findings(folded, brand))
    return _merge_overlaps(folded.original, _drop_nested(findings))


def _scan(
    folded: Folded, rules: RuleSet, style: str | None
) -> tuple[list[_Hit], dict[int, list[tuple[int, int]]], list[tuple[int, int]]]:
    hits: list[_Hit] = []
    allowed: dict[int, list[tuple[int, int]]] = {}
    excepted: list[tuple[int, int]] = []
    tight = folded.tight
    if rules.automaton is not None and tight.text:
        for last, entries in rules.automaton.iter(tight.text):
            for entry in entries:
                first = last - entry.length + 1
                if entry.kind is EntryKind.EXCEPTION:
                    excepted.append(tight.span(first, last + 1))
                    continue
                if not rules.rules[entry.rule].applies_to(style):
                    continue
                if entry.kind is EntryKind.ALLOW:
                    allowed.setdefault(entry.rule, []).append(tight.span(first, last + 1))
                elif word_edges_ok(tight.text, first, last + 1):
                    start, end = tight.span(first, last + 1)
                    hits.append(_Hit(start, end, entry.rule, entry.word))
    for index, pattern in rules.patterns:
        rule = rules.rules[index]
        if not rule.applies_to(style):
            continue
        view = folded.tight if rule.view == "tight" else folded.light
        for match in pattern.finditer(view.text):
            group = "hit" if "hit" in pattern.groupindex and match.start("hit") >= 0 else 0
            first, last = match.span(group)
            if last > first:
                start, end = view.span(first, last)
                hits.append(_Hit(start, end, index, view.text[first:last]))
    return hits, allowed, excepted


class _Cover:
    """Spans that hide the hits inside them; a lookup walks back at most the longest span's length."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        self.reach: dict[int, int] = {}
        for start, end in spans:
            if end > self.reach.get(start, -1):
                self.reach[start] = end
        self.longest = max((end - start for start, end in spans), default=0)

    def covers(self, hit: _Hit) -> bool:
        if not self.reach:
            return False
        reach = self.reach
        return any(reach.get(start, -1) >= hit.end for start in range(hit.start, hit.start - self.longest, -1))


def _brand_names(folded: Folded, brand: BrandProfile) -> list[tuple[int, int]]:
    """The brand's and its products' names: a name is not a claim (SAMR guidance: names and
    trademarks that contain an absolute word may be used to name the product)."""
    matcher = _name_matcher((brand.name, *(n for p in brand.products for n in p.names)))
    spans: list[tuple[int, int]] = []
    if matcher.automaton is not None and folded.tight.text:
        for last, entries in matcher.automaton.iter(folded.tight.text):
            for entry in entries:
                spans.append(folded.tight.span(last - entry.length + 1, last + 1))
    return spans


@functools.lru_cache(maxsize=1024)
def _citation(rule: Rule) -> str:
    return rule.citation


@functools.lru_cache(maxsize=256)
def _name_matcher(names: tuple[str, ...]) -> RuleSet:
    return compile_rules((), names)


def _finding(original: str, hit: _Hit, rule: Rule) -> Finding:
    return Finding(
        original[hit.start : hit.end],
        hit.start,
        hit.end,
        rule.id,
        rule.category,
        rule.severity,
        rule.explanation_zh,
        rule.explanation_en,
        rule.rewrite_for(hit.word),
        _citation(rule),
    )


_RANK = {Severity.MUST_FIX: 0, Severity.REVIEW: 1}


def _drop_nested(findings: list[Finding]) -> list[Finding]:
    """One finding per phrase: drop a finding inside another at least as severe, and duplicates."""
    ordered = sorted(findings, key=lambda f: (f.start, -f.end, _RANK[f.severity]))
    kept: list[Finding] = []
    # Sorted by start, every kept finding starts at or before this one: it contains this one when it
    # ends at or after it. So the furthest end among kept findings of each severity decides.
    reach = {Severity.MUST_FIX: -1, Severity.REVIEW: -1}
    for finding in ordered:
        if finding.severity is Severity.MUST_FIX:
            covered = reach[Severity.MUST_FIX] >= finding.end
        else:
            covered = max(reach.values()) >= finding.end
        if not covered:
            kept.append(finding)
            reach[finding.severity] = max(reach[finding.severity], finding.end)
    return kept


def _merge_overlaps(original: str, findings: list[Finding]) -> list[Finding]:
    """Two findings of one category that partly overlap ("秒杀最后", "最后一波" in "秒杀最后一波") become one
    over both spans, reported under the more severe (then the longer) of the two."""
    merged: list[Finding] = []
    for finding in findings:  # ordered by start
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and previous.category is finding.category
            and finding.start < previous.end < finding.end
        ):  # (a nested one was kept on purpose)
            lead = min((previous, finding), key=lambda f: (_RANK[f.severity], -(f.end - f.start)))
            start, end = previous.start, max(previous.end, finding.end)
            # The lead's rewrite still fits when it covers both, deletes, or both are the same rule.
            fits = (lead.start, lead.end) == (start, end) or lead.suggestion == "" or previous.rule == finding.rule
            merged[-1] = replace(
                lead, phrase=original[start:end], start=start, end=end, suggestion=lead.suggestion if fits else None
            )
        else:
            merged.append(finding)
    return merged
