"""Daily and monthly budgets per user, per conversation and for everyone.

Defaults come from settings (``BOT_QUOTA_*``); admins change them at runtime on the admin
page (stored in ``quota_limits``). Usage is counted by ``Meter`` into ``usage_counters``
with atomic upserts, so several processes share one count.

``check`` runs before a turn calls the model. A turn that started under budget is finished
(a half answer helps nobody), so a budget can be overshot by at most one turn's usage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.config import Settings
from bot.store.db import Database
from bot.store.usage import CounterKey, LimitRow, QuotaScope, Totals, UsageStore
from bot.usage.access import Admins
from bot.usage.allowance import Allowance, parse_allowance
from bot.usage.periods import Period, describe_reset, local_now, period_start, resets_at
from bot.usage.pricing import Prices


class Scope(StrEnum):
    USER = "user"
    CONVERSATION = "conversation"
    GLOBAL = "global"


DEFAULT_SUBJECT = "*"  # a runtime default for every user / every conversation


def user_subject(platform: str, user_id: str) -> str:
    return f"{platform}:{user_id}"


def subjects(conversation_id: int | None, platform: str, user_id: str) -> list[tuple[Scope, str]]:
    """The quota subjects a call by ``user_id`` in a conversation is counted against."""
    out: list[tuple[Scope, str]] = []
    if user_id:
        out.append((Scope.USER, user_subject(platform, user_id)))
    if conversation_id is not None:
        out.append((Scope.CONVERSATION, str(conversation_id)))
    out.append((Scope.GLOBAL, ""))
    return out


@dataclass(frozen=True, slots=True)
class QuotaRefusal:
    """A reached limit: what the user is told instead of an answer."""

    scope: Scope
    period: Period
    unit: str  # "tokens" or "cost"
    used: float
    limit: float
    resets_at: datetime
    text: str


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """One subject's use of one period against its limit (for /usage and the admin page)."""

    scope: Scope
    subject: str
    period: Period
    used: Totals
    budget: Allowance
    source: str  # "configuration", "default set by an admin", "set by an admin"
    resets: str

    def share(self) -> float | None:
        """The largest fraction of a limit used (None without a limit)."""
        shares = []
        if self.budget.tokens:
            shares.append(self.used.tokens / self.budget.tokens)
        if self.budget.cost:
            shares.append(self.used.cost / self.budget.cost)
        if self.budget.tokens == 0 or self.budget.cost == 0:
            shares.append(1.0)
        return max(shares) if shares else None


@dataclass(frozen=True, slots=True)
class Headroom:
    """What is left before the nearest limit, per unit (None: no limit in that unit), and
    the limit it is left of (for telling the user which one)."""

    tokens: int | None = None
    cost: float | None = None
    tokens_of: QuotaStatus | None = None
    cost_of: QuotaStatus | None = None

    def allows(self, tokens: int, cost: float) -> bool:
        return (self.tokens is None or tokens <= self.tokens) and (self.cost is None or cost <= self.cost)


class Quotas:
    def __init__(self, settings: Settings, db: Database, admins: Admins | None = None) -> None:
        self.settings = settings
        self.store = UsageStore(db)
        self.admins = admins if admins is not None else Admins(settings.admins)
        self.prices = Prices.from_settings(settings)
        self.defaults: dict[tuple[Scope, Period], Allowance] = {
            (scope, period): parse_allowance(getattr(settings, f"quota_{scope.value}_{period.adjective}"))
            for scope in Scope
            for period in Period
        }

    def counter_keys(
        self, conversation_id: int | None, platform: str, user_id: str, now: datetime | None = None
    ) -> list[CounterKey]:
        local = local_now(self.settings.timezone, now)
        return [
            CounterKey(scope.value, subject, period.value, period_start(period, local))
            for scope, subject in subjects(conversation_id, platform, user_id)
            for period in Period
        ]

    async def budgets(self, pairs: list[tuple[Scope, str]]) -> dict[tuple[Scope, str, Period], tuple[Allowance, str]]:
        """The limit in force for each subject and period, and where it comes from."""
        wanted: set[tuple[QuotaScope, str]] = {(s.value, sub) for s, sub in pairs} | {
            (s.value, DEFAULT_SUBJECT) for s, _ in pairs
        }
        rows: dict[tuple[str, str, str], LimitRow] = {
            (r.scope, r.subject, r.period): r for r in await self.store.limits(sorted(wanted))
        }
        out = {}
        for scope, subject in pairs:
            for period in Period:
                own = rows.get((scope.value, subject, period.value))
                default = rows.get((scope.value, DEFAULT_SUBJECT, period.value))
                if own is not None and subject != DEFAULT_SUBJECT:
                    out[(scope, subject, period)] = (Allowance(own.tokens, own.cost), "set by an admin")
                elif default is not None:
                    out[(scope, subject, period)] = (Allowance(default.tokens, default.cost), "default set by an admin")
                else:
                    out[(scope, subject, period)] = (self.defaults[(scope, period)], "configuration")
        return out

    async def status(
        self,
        conversation_id: int | None,
        platform: str,
        user_id: str,
        now: datetime | None = None,
        *,
        budgets: dict[tuple[Scope, str, Period], tuple[Allowance, str]] | None = None,
    ) -> list[QuotaStatus]:
        local = local_now(self.settings.timezone, now)
        if budgets is None:
            budgets = await self.budgets(subjects(conversation_id, platform, user_id))
        keys = self.counter_keys(conversation_id, platform, user_id, now)
        totals = await self.store.totals(keys)
        out = []
        for key in keys:
            scope, period = Scope(key.scope), Period(key.period)
            budget, source = budgets[(scope, key.subject, period)]
            out.append(
                QuotaStatus(scope, key.subject, period, totals[key], budget, source, describe_reset(period, local))
            )
        return out

    async def check(
        self, conversation_id: int | None, platform: str, user_id: str, now: datetime | None = None
    ) -> QuotaRefusal | None:
        """Before calling the model: None to go ahead, or the limit reached (admins: None).

        When several limits are reached the one that lasts longest is reported, so the
        user is not sent back at midnight to be refused again by the month."""
        if (platform, user_id) in self.admins:
            return None
        local = local_now(self.settings.timezone, now)
        budgets = await self.budgets(subjects(conversation_id, platform, user_id))
        if all(budget.unlimited for budget, _ in budgets.values()):
            return None  # nothing to count against: no need to read the counters
        hits: list[QuotaRefusal] = []
        for st in await self.status(conversation_id, platform, user_id, now, budgets=budgets):
            b = st.budget
            if b.tokens is not None and st.used.tokens >= b.tokens:
                hits.append(self._refusal(st, "tokens", st.used.tokens, b.tokens, local))
            elif b.cost is not None and st.used.cost >= b.cost:
                hits.append(self._refusal(st, "cost", st.used.cost, b.cost, local))
        if not hits:
            return None
        order = [Scope.USER, Scope.CONVERSATION, Scope.GLOBAL]
        return max(hits, key=lambda h: (h.resets_at, -order.index(h.scope)))

    async def headroom(
        self, conversation_id: int | None, platform: str, user_id: str, now: datetime | None = None
    ) -> Headroom:
        """What ``user_id`` may still spend in this conversation before any limit (admins:
        no limit), so work that costs many calls can be sized or refused before it starts."""
        if (platform, user_id) in self.admins:
            return Headroom()
        budgets = await self.budgets(subjects(conversation_id, platform, user_id))
        if all(budget.unlimited for budget, _ in budgets.values()):
            return Headroom()
        tokens: tuple[int, QuotaStatus] | None = None
        cost: tuple[float, QuotaStatus] | None = None
        for st in await self.status(conversation_id, platform, user_id, now, budgets=budgets):
            if st.budget.tokens is not None:
                left = max(0, st.budget.tokens - st.used.tokens)
                if tokens is None or left < tokens[0]:
                    tokens = (left, st)
            if st.budget.cost is not None:
                spare = max(0.0, st.budget.cost - st.used.cost)
                if cost is None or spare < cost[0]:
                    cost = (spare, st)
        return Headroom(
            tokens[0] if tokens else None,
            cost[0] if cost else None,
            tokens[1] if tokens else None,
            cost[1] if cost else None,
        )

    def _refusal(self, st: QuotaStatus, unit: str, used: float, limit: float, local: datetime) -> QuotaRefusal:
        amount = f"{int(limit):,} tokens" if unit == "tokens" else self.prices.money(limit)
        whose = {
            Scope.USER: "You have",
            Scope.CONVERSATION: "This conversation has",
            Scope.GLOBAL: "The assistant has",
        }[st.scope]
        what = {
            Scope.USER: f"your {st.period.adjective} limit",
            Scope.CONVERSATION: f"its {st.period.adjective} limit",
            Scope.GLOBAL: f"its {st.period.adjective} budget for everyone",
        }[st.scope]
        text = (
            f"{whose} reached {what} of {amount}. It resets {st.resets}. "
            "Your message is saved, but I won't answer it until then — an admin can raise the limit."
        )
        return QuotaRefusal(st.scope, st.period, unit, used, limit, resets_at(st.period, local), text)

    # --- changed at runtime (admin page) ---
    async def set_limit(self, scope: Scope, subject: str, period: Period, budget: Allowance, *, by: str) -> None:
        """Set a limit; ``Allowance()`` (no tokens, no cost) lifts it (no limit at all)."""
        await self.store.set_limit(scope.value, subject, period.value, budget.tokens, budget.cost, by)

    async def reset_limit(self, scope: Scope, subject: str, period: Period) -> None:
        """Back to the default (the runtime default for the scope, else configuration)."""
        await self.store.delete_limit(scope.value, subject, period.value)
