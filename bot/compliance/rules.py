"""Rule files: what they hold, how they load, and the matcher compiled from them.

A rule file is TOML (``bot/compliance/data/*.toml``, and an operator's directory)::

    exceptions = ["第一坊"]          # operators: phrases never flagged, wherever they stand
    disable = ["urgency.deadline"]   # operators: built-in rules switched off

    [source]                         # required: where the list comes from, and when it was compiled
    title = "…"
    reference = "《中华人民共和国广告法》第九条第（三）项"
    compiled = 2026-12-07

    [[rules]]
    id = "absolute.superlative"      # unique over all files
    category = "absolute"            # a findings.Category value
    severity = "must-fix"            # or "review"
    styles = ["xiaohongshu"]         # optional: only for these copy styles (bot/copywriting/styles.py ids)
    zh = "…"                         # the explanation a writer reads, Chinese and English
    en = "…"
    suggest = "很好"                 # optional rewrite for any match ("" = delete the phrase)
    terms = ["最佳", "最好"]          # words, matched after folding (see fold.py)
    allow = ["最好提前"]              # phrases in which a term of this rule is not a claim
    patterns = ['…']                 # regular expressions over the folded text
    view = "tight"                   # the view patterns read: "tight" (default) or "light"
    [rules.rewrite]                  # optional per-term rewrites
    "最好" = "很好"

    [[extend]]                       # operators: more terms or allowed phrases for an existing rule
    rule = "absolute.superlative"
    terms = ["…"]
    allow = ["…"]

Patterns are written against folded text: lower case, simplified characters, half-width digits
and ASCII punctuation; a group named ``hit`` narrows the reported span to that group.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any

import ahocorasick

from bot.compliance.findings import Category, Severity
from bot.compliance.fold import fold_word

VIEWS = ("tight", "light")


class RulesError(ValueError):
    """A rule file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class Source:
    title: str
    reference: str
    compiled: dt.date
    file: str
    url: str = ""
    notes: str = ""


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    category: Category
    severity: Severity
    explanation_zh: str
    explanation_en: str
    source: Source
    terms: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    view: str = "tight"
    styles: frozenset[str] = frozenset()
    suggestion: str | None = None
    rewrites: tuple[tuple[str, str], ...] = ()  # (folded term, rewrite)

    @property
    def citation(self) -> str:
        return f"{self.source.reference} ({self.source.file}, {self.source.compiled.isoformat()})"

    def applies_to(self, style: str | None) -> bool:
        return not self.styles or (style is not None and style in self.styles)

    def rewrite_for(self, folded_term: str | None) -> str | None:
        for term, rewrite in self.rewrites:
            if term == folded_term:
                return rewrite
        return self.suggestion


class EntryKind(Enum):
    TERM = 1
    ALLOW = 2
    EXCEPTION = 3


@dataclass(frozen=True, slots=True)
class Entry:
    kind: EntryKind
    rule: int  # index into RuleSet.rules (-1 for exceptions)
    length: int  # folded length
    word: str  # folded


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    exceptions: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    _automaton: Any = field(default=None, compare=False, repr=False)
    _patterns: tuple[tuple[int, re.Pattern[str]], ...] = field(default=(), compare=False, repr=False)

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    @property
    def automaton(self) -> Any:
        return self._automaton

    @property
    def patterns(self) -> tuple[tuple[int, re.Pattern[str]], ...]:
        return self._patterns

    @property
    def styles(self) -> frozenset[str]:
        """Every copy style some rule is keyed to."""
        return frozenset().union(*(rule.styles for rule in self.rules))


def compile_rules(rules: Iterable[Rule], exceptions: Iterable[str] = (), files: Iterable[str] = ()) -> RuleSet:
    """One Aho–Corasick automaton over every term, allowed phrase and exception (all folded),
    and the rules' regular expressions compiled."""
    rules = tuple(rules)
    exceptions = tuple(dict.fromkeys(e for e in exceptions if e.strip()))
    entries: dict[str, list[Entry]] = {}

    def add(word: str, kind: EntryKind, index: int) -> None:
        folded = fold_word(word)
        if folded:
            entries.setdefault(folded, []).append(Entry(kind, index, len(folded), folded))

    patterns: list[tuple[int, re.Pattern[str]]] = []
    for index, rule in enumerate(rules):
        for term in rule.terms:
            add(term, EntryKind.TERM, index)
        for phrase in rule.allow:
            add(phrase, EntryKind.ALLOW, index)
        for pattern in rule.patterns:
            try:
                patterns.append((index, re.compile(pattern)))
            except re.error as exc:
                raise RulesError(f"{rule.source.file}: rule {rule.id}: bad pattern {pattern!r}: {exc}") from None
    for phrase in exceptions:
        add(phrase, EntryKind.EXCEPTION, -1)
    automaton = ahocorasick.Automaton()
    for word, found in entries.items():
        automaton.add_word(word, tuple(found))
    if entries:
        automaton.make_automaton()
    return RuleSet(rules, exceptions, tuple(files), automaton if entries else None, tuple(patterns))


# --- loading -----------------------------------------------------------------------------------


def _strings(value: Any, where: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RulesError(f"{where}: {key} must be a list of strings")
    return tuple(v for v in value if v.strip())


def _source(data: dict[str, Any], name: str) -> Source:
    raw = data.get("source")
    if not isinstance(raw, dict):
        raise RulesError(f"{name}: a [source] table is required (title, reference, compiled date)")
    compiled = raw.get("compiled")
    if isinstance(compiled, dt.datetime):
        compiled = compiled.date()
    if not isinstance(compiled, dt.date):
        raise RulesError(f"{name}: [source] compiled must be a date (compiled = 2026-12-07)")
    for key in ("title", "reference"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise RulesError(f"{name}: [source] {key} is required")
    return Source(raw["title"], raw["reference"], compiled, name, str(raw.get("url", "")), str(raw.get("notes", "")))


def _enum(kind: type[Enum], value: Any, where: str, key: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in kind)
        raise RulesError(f"{where}: {key} = {value!r} is not one of: {allowed}") from None


def _rule(raw: Any, source: Source, default_category: Category) -> Rule:
    where = f"{source.file}: rule {raw.get('id', '?') if isinstance(raw, dict) else '?'}"
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"].strip():
        raise RulesError(f"{where}: every [[rules]] entry needs an id")
    known = {
        "id",
        "category",
        "severity",
        "styles",
        "zh",
        "en",
        "suggest",
        "terms",
        "allow",
        "patterns",
        "view",
        "rewrite",
    }
    if unknown := set(raw) - known:
        raise RulesError(f"{where}: unknown keys {sorted(unknown)}")
    view = raw.get("view", "tight")
    if view not in VIEWS:
        raise RulesError(f"{where}: view must be one of {VIEWS}")
    rewrite = raw.get("rewrite", {})
    if not isinstance(rewrite, dict) or not all(isinstance(v, str) for v in rewrite.values()):
        raise RulesError(f"{where}: [rules.rewrite] maps terms to strings")
    rule = Rule(
        id=raw["id"].strip(),
        category=_enum(Category, raw.get("category", default_category.value), where, "category"),
        severity=_enum(Severity, raw.get("severity", "must-fix"), where, "severity"),
        explanation_zh=str(raw.get("zh", "")).strip(),
        explanation_en=str(raw.get("en", "")).strip(),
        source=source,
        terms=_strings(raw.get("terms"), where, "terms"),
        allow=_strings(raw.get("allow"), where, "allow"),
        patterns=_strings(raw.get("patterns"), where, "patterns"),
        view=view,
        styles=frozenset(_strings(raw.get("styles"), where, "styles")),
        suggestion=str(raw["suggest"]) if "suggest" in raw else None,
        rewrites=tuple((fold_word(str(k)), v) for k, v in rewrite.items()),
    )
    if not rule.terms and not rule.patterns:
        raise RulesError(f"{where}: a rule needs terms or patterns")
    if not rule.explanation_zh and not rule.explanation_en:
        raise RulesError(f"{where}: a rule needs an explanation (zh and/or en)")
    return rule


@dataclass(slots=True)
class _Collected:
    rules: list[Rule] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    disabled: set[str] = field(default_factory=set)
    extends: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def _read(text: str, name: str, into: _Collected, *, operator: bool) -> None:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{name}: not valid TOML: {exc}") from None
    known = {"source", "rules", "exceptions", "disable", "extend"}
    if unknown := set(data) - known:
        raise RulesError(f"{name}: unknown top-level keys {sorted(unknown)}")
    into.files.append(name)
    into.exceptions.extend(_strings(data.get("exceptions"), name, "exceptions"))
    into.disabled.update(_strings(data.get("disable"), name, "disable"))
    if not (data.get("rules") or data.get("extend")):
        return  # exceptions / disable only: no source needed
    source = _source(data, name)
    default = Category.CUSTOM if operator else Category.ABSOLUTE
    into.rules.extend(_rule(raw, source, default) for raw in data.get("rules", []))
    for raw in data.get("extend", []):
        if not isinstance(raw, dict) or not isinstance(raw.get("rule"), str):
            raise RulesError(f'{name}: every [[extend]] entry names a rule (rule = "absolute.superlative")')
        into.extends.append((name, raw))


def _finish(collected: _Collected) -> RuleSet:
    by_id: dict[str, Rule] = {}
    for rule in collected.rules:
        if rule.id in by_id:
            first = by_id[rule.id].source.file
            raise RulesError(f"{rule.source.file}: rule id {rule.id} is already defined in {first}")
        by_id[rule.id] = rule
    for name, raw in collected.extends:
        target = by_id.get(raw["rule"])
        if target is None:
            raise RulesError(f"{name}: [[extend]] names an unknown rule {raw['rule']!r}")
        where = f"{name}: extend {raw['rule']}"
        by_id[target.id] = replace(
            target,
            terms=target.terms + _strings(raw.get("terms"), where, "terms"),
            allow=target.allow + _strings(raw.get("allow"), where, "allow"),
        )
    unknown = collected.disabled - set(by_id)
    if unknown:
        raise RulesError(f"disable names unknown rules: {sorted(unknown)}")
    rules = [rule for rule_id, rule in by_id.items() if rule_id not in collected.disabled]
    return compile_rules(rules, collected.exceptions, collected.files)


def _builtin(into: _Collected) -> None:
    data = resources.files("bot.compliance") / "data"
    for item in sorted(data.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".toml"):
            _read(item.read_text(encoding="utf-8"), f"bot/compliance/data/{item.name}", into, operator=False)


def load_rules(extra_dir: str | Path | None = None) -> RuleSet:
    """The built-in rules plus every ``*.toml`` in ``extra_dir`` (an operator's words, exceptions,
    extensions and switched-off rules), compiled. Raises ``RulesError`` with the file and problem."""
    collected = _Collected()
    _builtin(collected)
    if extra_dir is not None:
        directory = Path(extra_dir)
        if not directory.is_dir():
            raise RulesError(f"{directory}: not a directory")
        for path in sorted(directory.glob("*.toml")):
            _read(path.read_text(encoding="utf-8"), str(path), collected, operator=True)
    return _finish(collected)


@functools.cache
def default_rules() -> RuleSet:
    """The built-in rules, loaded and compiled once."""
    return load_rules()


@functools.cache
def rules_for(extra_dir: str = "") -> RuleSet:
    """The built-in rules plus an operator's directory (``BOT_COMPLIANCE_RULES_DIR``), loaded
    and compiled once per process and directory ("" = the built-in rules only)."""
    return load_rules(extra_dir) if extra_dir else default_rules()
