"""Budgets as written in settings and on the admin page: "200000 tokens", "2.50 USD", both.

No imports from the rest of ``bot``: ``bot.config`` validates its settings with it, and
``bot.usage`` builds on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKENS = re.compile(r"^\s*([0-9][0-9_]*)\s*(k|m)?\s*tokens?\s*$", re.I)
_MONEY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z$€¥£]{1,8})\s*$")
_SCALE = {"": 1, "k": 1_000, "m": 1_000_000}


@dataclass(frozen=True, slots=True)
class Allowance:
    """A limit: at most ``tokens`` tokens and/or ``cost`` money per period (None: no limit)."""

    tokens: int | None = None
    cost: float | None = None

    @property
    def unlimited(self) -> bool:
        return self.tokens is None and self.cost is None

    def describe(self, currency: str) -> str:
        parts = []
        if self.tokens is not None:
            parts.append(f"{self.tokens:,} tokens")
        if self.cost is not None:
            parts.append(f"{self.cost:,.2f} {currency}")
        return " and ".join(parts) or "no limit"


def parse_allowance(text: str) -> Allowance:
    """Parse "200000 tokens", "200k tokens", "2.5 USD" / "2.5 cost", or both comma-separated.
    "" means no limit. Raises ValueError naming what was not understood."""
    tokens: int | None = None
    cost: float | None = None
    for item in (p for p in text.split(",") if p.strip()):
        m = _TOKENS.match(item)
        if m:
            tokens = int(m.group(1).replace("_", "")) * _SCALE[(m.group(2) or "").lower()]
            continue
        m = _MONEY.match(item)
        if m:
            cost = float(m.group(1))
            continue
        raise ValueError(f"cannot read budget {item.strip()!r}: write e.g. '200000 tokens' or '2.50 USD'")
    return Allowance(tokens, cost)
