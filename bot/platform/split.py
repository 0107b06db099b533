"""Splitting a long Markdown answer into messages that fit a platform's limit.

Splits prefer a paragraph break, then a line break, then a sentence end (also Chinese
。！？), then a space; a code block cut in two is closed and reopened so both halves
render as code.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_SENTENCE_END = re.compile(r"[.!?。！？；;…](?=\s|$)|[。！？；…]")
_FENCE = re.compile(r"^\s*(```|~~~)(.*)$", re.MULTILINE)
FENCE_RESERVE = 16  # room for a closing fence and a reopening ```lang line


def _fit(text: str, limit: int, measure: Callable[[str], int]) -> int:
    """The largest prefix length (in characters) whose measure is within ``limit``."""
    if measure(text) <= limit:
        return len(text)
    if measure is len:
        return limit
    lo, hi = 0, min(len(text), limit)
    while lo < hi:  # measure is monotonic in prefix length
        mid = (lo + hi + 1) // 2
        if measure(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def split_point(text: str, limit: int, measure: Callable[[str], int] = len) -> int:
    """Where to cut ``text`` so the first piece fits ``limit``; len(text) if it all fits."""
    hard = _fit(text, limit, measure)
    if hard >= len(text):
        return len(text)
    window = text[:hard]
    floor = hard // 2  # never make a piece shorter than half the limit to find a nicer cut
    for pattern in ("\n\n", "\n"):
        cut = window.rfind(pattern)
        if cut > floor:
            return cut + len(pattern)
    best = -1
    for match in _SENTENCE_END.finditer(window):
        best = match.end()
    if best > floor:
        return best
    cut = window.rfind(" ")
    if cut > floor:
        return cut + 1
    # Don't cut a surrogate pair / a character's UTF-16 halves: hard is a character index.
    return max(1, hard)


def _open_fence(text: str) -> str | None:
    """The opening line of a code block left open at the end of ``text``, if any."""
    open_line = None
    for match in _FENCE.finditer(text):
        if open_line is None:
            open_line = match.group(1) + match.group(2).strip()
        elif match.group(2).strip() == "":
            open_line = None
    return open_line


def split_markdown(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    pieces: list[str] = []
    rest = text
    while rest:
        cut = split_point(rest, limit - FENCE_RESERVE if measure(rest) > limit else limit, measure)
        piece, rest = rest[:cut], rest[cut:]
        fence = _open_fence(piece)
        if fence is not None and rest:
            piece = piece.rstrip("\n") + "\n" + fence[:3]
            rest = fence + "\n" + rest.lstrip("\n")
        pieces.append(piece.rstrip() if rest else piece)
        rest = rest.lstrip("\n") if not rest.startswith(("```", "~~~")) else rest
    return [p for p in pieces if p.strip()] or [""]
