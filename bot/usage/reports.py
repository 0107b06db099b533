"""Usage in words (``/usage``, ``/usage all``) and as rows (``bot usage``: table, CSV, JSON)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from typing import Literal, SupportsFloat

from bot.config import Settings
from bot.store.db import Database
from bot.store.usage import UsageStore
from bot.usage.periods import Period, local_now, period_start
from bot.usage.pricing import Prices
from bot.usage.quotas import Quotas, QuotaStatus, Scope

Format = Literal["table", "csv", "json"]
COLUMNS = [
    "day",
    "platform",
    "user",
    "conversation",
    "turns",
    "calls",
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    "cost",
]


def _line(label: str, st: QuotaStatus, prices: Prices) -> str:
    text = f"{label}: {st.used.tokens:,} tokens · {prices.money(st.used.cost)}"
    share = st.share()
    if not st.budget.unlimited and share is not None:
        text += (
            f" — limit {st.budget.describe(prices.currency)}, {min(share, 9.99):.0%} used, "
            f"resets {st.resets.split(' (')[0]}"
        )
    return text


async def usage_report(
    db: Database,
    settings: Settings,
    conversation_id: int | None,
    platform: str,
    user_id: str,
    *,
    all_users: bool = False,
    admin: bool = False,
) -> str:
    """What ``/usage`` shows: the asker's own use today and this month (against their
    limits), the conversation's, and with ``all_users`` (admins only) everyone's."""
    quotas = Quotas(settings, db)
    prices = quotas.prices
    store = UsageStore(db)
    lines: list[str] = []
    if all_users and not admin:
        lines.append("Only admins can see everyone's usage; here is yours.")
    statuses = {(s.scope, s.period): s for s in await quotas.status(conversation_id, platform, user_id)}
    if user_id:
        lines.append("**You**")
        lines.append(_line("Today", statuses[(Scope.USER, Period.DAY)], prices))
        lines.append(_line("This month", statuses[(Scope.USER, Period.MONTH)], prices))
        if admin:
            lines.append("(You are an admin: no limits apply to you.)")
    if conversation_id is not None:
        totals = await store.conversation_totals(conversation_id)
        share = (
            f" ({totals['cached_tokens'] * 100 // totals['prompt_tokens']}% from the prompt cache)"
            if totals["prompt_tokens"]
            else ""
        )
        lines.append("")
        lines.append("**This conversation**")
        lines.append(
            f"{totals['turns']} answer(s), {totals['prompt_tokens']:,} prompt tokens{share}, "
            f"{totals['completion_tokens']:,} completion tokens · {prices.money(totals['cost'])}"
        )
        lines.append(_line("Today", statuses[(Scope.CONVERSATION, Period.DAY)], prices))
    if all_users and admin:
        local = local_now(settings.timezone)
        lines.append("")
        lines.append("**Everyone**")
        lines.append(_line("Today", statuses[(Scope.GLOBAL, Period.DAY)], prices))
        lines.append(_line("This month", statuses[(Scope.GLOBAL, Period.MONTH)], prices))
        top = await store.top_counters(Scope.USER.value, Period.MONTH.value, period_start(Period.MONTH, local), 10)
        if top:
            lines.append("Top users this month:")
            for i, (subject, t) in enumerate(top, 1):
                lines.append(f"{i}. {subject} — {t.tokens:,} tokens · {prices.money(t.cost)}")
    return "\n".join(lines).strip()


async def usage_rows(
    db: Database, since: date, until: date, *, platform: str | None = None, user_id: str | None = None
) -> list[dict]:
    return await UsageStore(db).breakdown(since.isoformat(), until.isoformat(), platform=platform, user_id=user_id)


def default_range(settings: Settings, days: int) -> tuple[date, date]:
    today = local_now(settings.timezone).date()
    return today - timedelta(days=max(1, days) - 1), today


COST_DECIMALS = 4  # cost is shown to this many decimals in every format


def render_rows(rows: list[dict], fmt: Format, currency: str) -> str:
    if fmt == "json":  # a number, rounded as the table and CSV show it
        rounded = [{**r, "cost": round(float(r["cost"] or 0), COST_DECIMALS)} for r in rows]
        return json.dumps({"currency": currency, "rows": rounded}, indent=2, ensure_ascii=False)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({**r, "cost": _cell(r["cost"], "cost")} for r in rows)
        return out.getvalue()
    header = [c if c != "cost" else f"cost ({currency})" for c in COLUMNS]
    body = [[_cell(r[c], c) for c in COLUMNS] for r in rows]
    if rows:
        total = {c: sum(r[c] for r in rows) for c in COLUMNS[4:]}
        body.append(["total", "", "", ""] + [_cell(total[c], c) for c in COLUMNS[4:]])
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    numeric = set(range(4, len(COLUMNS))) | {3}
    lines = ["  ".join(h.rjust(w) if i in numeric else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    for b in body:
        lines.append("  ".join(v.rjust(w) if i in numeric else v.ljust(w) for i, (v, w) in enumerate(zip(b, widths))))
    if not rows:
        lines.append("(no usage in this range)")
    return "\n".join(lines) + "\n"


def _cell(value: object, column: str) -> str:
    if value is None:
        return ""
    if column == "cost" and isinstance(value, SupportsFloat):
        return f"{float(value):.{COST_DECIMALS}f}"
    if isinstance(value, int) and column != "conversation":
        return f"{value:,}"
    return str(value)
