"""``bot check [FILE|-] [--style ID] [--brand FILE|CHAT] [--format text|json]``: lint a draft.

Exit status: 0 clean, 1 something found (must-fix or review), 2 bad usage or unreadable input.
``bot check`` (``bot.process.cli``) passes ``find_brand`` (a chat's stored profile by its key)
and ``rules_dir`` (``BOT_COMPLIANCE_RULES_DIR``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from bot.compliance.brand import BrandError, BrandProfile, load_brand
from bot.compliance.engine import check
from bot.compliance.findings import Finding, Severity
from bot.compliance.rules import RulesError, RuleSet, default_rules, load_rules

CLEAN, FOUND, USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise _UsageError


class _UsageError(Exception):
    pass


def _parser() -> _Parser:
    parser = _Parser(
        prog="bot check",
        description=(
            "Check Chinese marketing copy against advertising law (absolute claims, guarantees, medical "
            "claims, urgency, price claims), a platform's rules and a brand profile. A lint, not legal advice."
        ),
    )
    parser.add_argument("file", nargs="?", default="-", help="the text to check (default: - for standard input)")
    parser.add_argument("--style", help="copy style id whose platform rules apply (xiaohongshu, douyin, …)")
    parser.add_argument(
        "--brand",
        help="brand profile (never-use words, prices, specifications): a .json or .toml "
        "file, or a chat's stored profile by its key, platform:workspace:chat",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--rules-dir",
        help="a directory of extra rule files (*.toml): an operator's own lists (default: BOT_COMPLIANCE_RULES_DIR)",
    )
    return parser


def _style_id(name: str | None) -> str | None:
    if name is None:
        return None
    from bot.copywriting.styles import STYLES, find_style

    style = find_style(name)
    if style is None:
        raise ValueError(f"unknown style {name!r}; one of: {', '.join(STYLES)}")
    return style.id


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    return Path(path).read_text(encoding="utf-8")


def line_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of an offset."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _text_report(name: str, text: str, findings: list[Finding]) -> str:
    lines = []
    for f in findings:
        line, column = line_column(text, f.start)
        if f.suggestion is None:
            fix = ""
        elif f.suggestion == "":
            fix = " → 删除 (delete)"
        else:
            fix = f" → {f.suggestion}"
        lines.append(f"{name}:{line}:{column}: {f.severity.value} [{f.rule}] 「{f.phrase}」{fix}")
        lines.append(f"    {f.explanation_zh}")
        lines.append(f"    {f.explanation_en}")
    must = sum(f.severity is Severity.MUST_FIX for f in findings)
    lines.append(f"{must} must-fix, {len(findings) - must} review" if findings else "clean: nothing found")
    return "\n".join(lines)


def _json_report(text: str, findings: list[Finding]) -> str:
    out = []
    for f in findings:
        line, column = line_column(text, f.start)
        out.append({**f.to_dict(), "line": line, "column": column})
    return json.dumps(out, ensure_ascii=False, indent=2)


def _brand(name: str | None, find_brand: Callable[[str], BrandProfile | None] | None) -> BrandProfile | None:
    """A profile file, or (when no such file exists) a chat's stored profile by its key."""
    if not name:
        return None
    if find_brand is None or Path(name).exists():
        return load_brand(name)
    found = find_brand(name)
    if found is None:
        raise BrandError(f"{name}: no such file, and no chat with that key has a brand profile")
    return found


def main(
    argv: list[str] | None = None,
    *,
    find_brand: Callable[[str], BrandProfile | None] | None = None,
    rules_dir: str = "",
) -> int:
    try:
        args = _parser().parse_args(argv)
    except _UsageError:
        return USAGE
    except SystemExit as exc:  # --help
        return CLEAN if exc.code in (0, None) else USAGE
    try:
        style = _style_id(args.style)
        brand = _brand(args.brand, find_brand)
        extra = args.rules_dir or rules_dir
        rules: RuleSet = load_rules(extra) if extra else default_rules()
        text = _read(args.file)
    except (ValueError, OSError) as exc:  # BrandError, RulesError, UnicodeDecodeError are ValueErrors
        kind = "brand profile" if isinstance(exc, BrandError) else "rules" if isinstance(exc, RulesError) else "input"
        print(f"bot check: {kind}: {exc}", file=sys.stderr)
        return USAGE
    findings = check(text, style=style, brand=brand, rules=rules)
    name = "<stdin>" if args.file == "-" else args.file
    print(_json_report(text, findings) if args.format == "json" else _text_report(name, text, findings))
    return FOUND if findings else CLEAN


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
