"""SQL for operators (issue 11): the gateway-call ledger, quota counters and limits, blocked
users, install settings and admin sessions, and the read-only queries of reports and the
admin page. Each method is one short transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.store.db import Database
from bot.store.models import (
    AdminSession,
    AdminSetting,
    BlockedUser,
    Conversation,
    GatewayCall,
    InboundEvent,
    Message,
    Part,
    QuotaLimit,
    Turn,
    UsageCounter,
    utcnow,
)

# The strings stored in gateway_calls.kind and .outcome, and in the scope and period of
# usage_counters and quota_limits (bot.usage.quotas.Scope, bot.usage.periods.Period).
CallKind = str  # the kind of turn the call was for (turns.kind: "chat", or a kind a feature registered)
CallOutcome = Literal["ok", "error", "cancelled"]
QuotaScope = Literal["user", "conversation", "global"]
QuotaPeriod = Literal["day", "month"]

_LIMITS, _COUNTERS, _CALLS, _TURNS = (
    QuotaLimit.__table__,
    UsageCounter.__table__,
    GatewayCall.__table__,
    Turn.__table__,
)
# Built once (their cache key is memoised): the per-turn quota check and the per-call ledger.
_SELECT_LIMITS = (
    select(_LIMITS)
    .where(_LIMITS.c.subject.in_(bindparam("subjects", expanding=True)))
    .order_by(_LIMITS.c.scope, _LIMITS.c.subject, _LIMITS.c.period)
)
_INSERT_CALL = insert(_CALLS)
_ADD_TURN_COST = (
    update(_TURNS)
    .where(_TURNS.c.id == bindparam("b_tid"))
    .values(cost=func.coalesce(_TURNS.c.cost, 0.0) + bindparam("b_cost"))
)


def _counter_upsert(dialect_insert: Any) -> Any:
    stmt = dialect_insert(_COUNTERS)
    return stmt.on_conflict_do_update(
        index_elements=["scope", "subject", "period", "period_start"],
        set_={
            "tokens": _COUNTERS.c.tokens + stmt.excluded.tokens,
            "cost": _COUNTERS.c.cost + stmt.excluded.cost,
            "calls": _COUNTERS.c.calls + stmt.excluded.calls,
        },
    )


_COUNTER_UPSERT = {True: _counter_upsert(sqlite_insert), False: _counter_upsert(pg_insert)}  # by db.sqlite


@dataclass(frozen=True, slots=True)
class CounterKey:
    scope: QuotaScope
    subject: str
    period: QuotaPeriod
    period_start: str


@dataclass(frozen=True, slots=True)
class Totals:
    tokens: int = 0
    cost: float = 0.0
    calls: int = 0


@dataclass(slots=True)
class CallRow:
    """One gateway call as the meter hands it to the store."""

    turn_id: int | None
    conversation_id: int | None
    platform: str
    user_id: str
    kind: CallKind
    model: str
    day: str
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cost: float
    ttft_ms: int | None
    duration_ms: int
    outcome: CallOutcome
    error_kind: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class LimitRow:
    scope: QuotaScope
    subject: str
    period: QuotaPeriod
    tokens: int | None
    cost: float | None
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class BlockedRow:
    platform: str
    user_id: str
    reason: str
    blocked_by: str
    blocked_at: datetime


def _sums() -> tuple[Any, ...]:
    """What a report adds up over the gateway calls it groups, labelled for ``_summed``."""
    return (
        func.count(func.distinct(GatewayCall.turn_id)).label("turns"),
        func.count(GatewayCall.id).label("calls"),
        func.sum(GatewayCall.prompt_tokens).label("prompt"),
        func.sum(GatewayCall.cached_tokens).label("cached"),
        func.sum(GatewayCall.completion_tokens).label("completion"),
        func.sum(GatewayCall.cost).label("cost"),
    )


def _summed(row: Any) -> dict[str, Any]:
    """``_sums`` of one row as a report's fields (a group with no value counts 0)."""
    return dict(
        turns=int(row.turns),
        calls=int(row.calls),
        prompt_tokens=int(row.prompt or 0),
        cached_tokens=int(row.cached or 0),
        completion_tokens=int(row.completion or 0),
        cost=float(row.cost or 0),
    )


class UsageStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _insert(self, model: type) -> Any:
        return (sqlite_insert if self.db.sqlite else pg_insert)(model)

    # --- the ledger and the counters ---
    async def record_call(self, call: CallRow, counters: list[CounterKey]) -> None:
        """The call's row, its cost added to its turn, and every counter incremented, in one
        transaction. The counters are upserts (``tokens = tokens + :n``): concurrent charges
        from any number of processes add up exactly."""
        tokens = call.prompt_tokens + call.completion_tokens
        values = {k: getattr(call, k) for k in CallRow.__slots__}
        async with self.db.write() as conn:
            await conn.execute(_INSERT_CALL, {**values, "created_at": utcnow()})
            if call.turn_id is not None and call.cost:
                await conn.execute(_ADD_TURN_COST, {"b_tid": call.turn_id, "b_cost": call.cost})
            if counters and (tokens or call.cost):
                await conn.execute(
                    _COUNTER_UPSERT[self.db.sqlite],
                    [
                        dict(
                            scope=k.scope,
                            subject=k.subject,
                            period=k.period,
                            period_start=k.period_start,
                            tokens=tokens,
                            cost=call.cost,
                            calls=1,
                        )
                        for k in counters
                    ],
                )

    async def totals(self, keys: list[CounterKey]) -> dict[CounterKey, Totals]:
        if not keys:
            return {}
        wanted = or_(
            *(
                and_(
                    UsageCounter.scope == k.scope,
                    UsageCounter.subject == k.subject,
                    UsageCounter.period == k.period,
                    UsageCounter.period_start == k.period_start,
                )
                for k in keys
            )
        )
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(
                        UsageCounter.scope,
                        UsageCounter.subject,
                        UsageCounter.period,
                        UsageCounter.period_start,
                        UsageCounter.tokens,
                        UsageCounter.cost,
                        UsageCounter.calls,
                    ).where(wanted)
                )
            ).all()
        found = {
            CounterKey(r.scope, r.subject, r.period, r.period_start): Totals(int(r.tokens), float(r.cost), int(r.calls))
            for r in rows
        }
        return {k: found.get(k, Totals()) for k in keys}

    async def top_counters(
        self, scope: QuotaScope, period: QuotaPeriod, period_start: str, limit: int = 20
    ) -> list[tuple[str, Totals]]:
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(UsageCounter.subject, UsageCounter.tokens, UsageCounter.cost, UsageCounter.calls)
                    .where(
                        UsageCounter.scope == scope,
                        UsageCounter.period == period,
                        UsageCounter.period_start == period_start,
                    )
                    .order_by(UsageCounter.cost.desc(), UsageCounter.tokens.desc())
                    .limit(limit)
                )
            ).all()
        return [(r.subject, Totals(int(r.tokens), float(r.cost), int(r.calls))) for r in rows]

    async def author_of(self, conversation_id: int, seq: int) -> str:
        """Who asked the message at ``seq`` (the user a turn is charged to)."""
        async with self.db.read() as conn:
            return (
                await conn.execute(
                    select(Message.author_id).where(Message.conversation_id == conversation_id, Message.seq == seq)
                )
            ).scalar() or ""

    # --- limits ---
    async def limits(self, subjects: list[tuple[QuotaScope, str]] | None = None) -> list[LimitRow]:
        async with self.db.read() as conn:
            if subjects is None:
                rows = (
                    await conn.execute(
                        select(QuotaLimit).order_by(QuotaLimit.scope, QuotaLimit.subject, QuotaLimit.period)
                    )
                ).all()
            else:  # by subject in SQL (one prepared statement), then by (scope, subject) here
                wanted = set(subjects)
                rows = [
                    r
                    for r in (await conn.execute(_SELECT_LIMITS, {"subjects": sorted({s for _, s in wanted})}))
                    if (r.scope, r.subject) in wanted
                ]
        return [LimitRow(r.scope, r.subject, r.period, r.tokens, r.cost, r.updated_by, r.updated_at) for r in rows]

    async def set_limit(
        self, scope: QuotaScope, subject: str, period: QuotaPeriod, tokens: int | None, cost: float | None, by: str
    ) -> None:
        stmt = self._insert(QuotaLimit).values(
            scope=scope, subject=subject, period=period, tokens=tokens, cost=cost, updated_by=by, updated_at=utcnow()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["scope", "subject", "period"],
            set_={
                "tokens": stmt.excluded.tokens,
                "cost": stmt.excluded.cost,
                "updated_by": stmt.excluded.updated_by,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        async with self.db.write() as conn:
            await conn.execute(stmt)

    async def delete_limit(self, scope: QuotaScope, subject: str, period: QuotaPeriod) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                delete(QuotaLimit).where(
                    QuotaLimit.scope == scope, QuotaLimit.subject == subject, QuotaLimit.period == period
                )
            )

    # --- blocked users ---
    async def is_blocked(self, platform: str, user_id: str) -> bool:
        async with self.db.read() as conn:
            return (
                await conn.execute(
                    select(BlockedUser.id).where(BlockedUser.platform == platform, BlockedUser.user_id == user_id)
                )
            ).first() is not None

    async def block(self, platform: str, user_id: str, reason: str, by: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                self._insert(BlockedUser)
                .values(platform=platform, user_id=user_id, reason=reason, blocked_by=by, blocked_at=utcnow())
                .on_conflict_do_nothing()
            )

    async def unblock(self, platform: str, user_id: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                delete(BlockedUser).where(BlockedUser.platform == platform, BlockedUser.user_id == user_id)
            )

    async def blocked_users(self) -> list[BlockedRow]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(BlockedUser).order_by(BlockedUser.blocked_at.desc()))).all()
        return [BlockedRow(b.platform, b.user_id, b.reason, b.blocked_by, b.blocked_at) for b in rows]

    async def claim_once(self, key: str) -> bool:
        """True the first time ``key`` is claimed, in any process (shares the inbound-event
        table, so the claims are pruned after a week like the events)."""
        async with self.db.write() as conn:
            result = await conn.execute(
                self._insert(InboundEvent)
                .values(platform="ops", event_id=key[:128], received_at=utcnow())
                .on_conflict_do_nothing()
            )
            return (result.rowcount or 0) > 0

    # --- install settings (password hash, session secret): never logged ---
    async def get_setting(self, key: str) -> str | None:
        async with self.db.read() as conn:
            return (await conn.execute(select(AdminSetting.value).where(AdminSetting.key == key))).scalar()

    async def set_setting(self, key: str, value: str, *, only_if_missing: bool = False) -> str:
        """Store ``value``; with ``only_if_missing`` keep a value another process stored
        first. Returns the value in force."""
        stmt = self._insert(AdminSetting).values(key=key, value=value, updated_at=utcnow())
        stmt = (
            stmt.on_conflict_do_nothing()
            if only_if_missing
            else stmt.on_conflict_do_update(
                index_elements=["key"], set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at}
            )
        )
        async with self.db.write() as conn:
            await conn.execute(stmt)
        stored = await self.get_setting(key)
        assert stored is not None
        return stored

    # --- admin sessions ---
    async def add_session(self, session_id: str, csrf: str, expires_at: datetime) -> None:
        async with self.db.write() as conn:
            await conn.execute(delete(AdminSession).where(AdminSession.expires_at < utcnow()))
            await conn.execute(
                insert(AdminSession).values(id=session_id, csrf=csrf, created_at=utcnow(), expires_at=expires_at)
            )

    async def session_csrf(self, session_id: str) -> str | None:
        """The session's CSRF token while it is valid; None for an unknown or expired one."""
        async with self.db.read() as conn:
            return (
                await conn.execute(
                    select(AdminSession.csrf).where(AdminSession.id == session_id, AdminSession.expires_at > utcnow())
                )
            ).scalar()

    async def end_session(self, session_id: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(delete(AdminSession).where(AdminSession.id == session_id))

    # --- reports ---
    async def per_day(self, since: str, until: str) -> list[dict]:
        """Per local day: turns, calls, tokens (prompt, cached, completion), cost, errors."""
        errors = func.sum(case((GatewayCall.outcome == "error", 1), else_=0))
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(GatewayCall.day, *_sums(), errors.label("errors"))
                    .where(GatewayCall.day >= since, GatewayCall.day <= until)
                    .group_by(GatewayCall.day)
                    .order_by(GatewayCall.day)
                )
            ).all()
        return [dict(day=r.day, **_summed(r), errors=int(r.errors or 0)) for r in rows]

    async def breakdown(
        self, since: str, until: str, *, platform: str | None = None, user_id: str | None = None
    ) -> list[dict]:
        """Per day, user and conversation (``bot usage``)."""
        query = select(
            GatewayCall.day,
            GatewayCall.platform,
            GatewayCall.user_id,
            GatewayCall.conversation_id,
            *_sums(),
        ).where(GatewayCall.day >= since, GatewayCall.day <= until)
        if platform:
            query = query.where(GatewayCall.platform == platform)
        if user_id:
            query = query.where(GatewayCall.user_id == user_id)
        query = query.group_by(
            GatewayCall.day, GatewayCall.platform, GatewayCall.user_id, GatewayCall.conversation_id
        ).order_by(GatewayCall.day, GatewayCall.platform, GatewayCall.user_id, GatewayCall.conversation_id)
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [
            dict(
                day=r.day,
                platform=r.platform,
                user=r.user_id,
                conversation=r.conversation_id,
                **_summed(r) | {"cost": round(float(r.cost or 0), 6)},
            )
            for r in rows
        ]

    async def conversation_totals(self, conversation_id: int) -> dict:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(
                        func.count(func.distinct(GatewayCall.turn_id)),
                        func.coalesce(func.sum(GatewayCall.prompt_tokens), 0),
                        func.coalesce(func.sum(GatewayCall.cached_tokens), 0),
                        func.coalesce(func.sum(GatewayCall.completion_tokens), 0),
                        func.coalesce(func.sum(GatewayCall.cost), 0.0),
                    ).where(GatewayCall.conversation_id == conversation_id)
                )
            ).one()
        return dict(
            turns=int(row[0]),
            prompt_tokens=int(row[1]),
            cached_tokens=int(row[2]),
            completion_tokens=int(row[3]),
            cost=float(row[4]),
        )

    async def latency_per_day(self, since: str, until: str) -> list[dict]:
        """Per day: the mean time to first token users saw (turns.ttft_ms) and the mean
        latency the bot added: a turn's duration minus the time spent inside gateway calls
        (prompt assembly, tools, database, the platform's writes)."""
        per_turn = (
            select(
                GatewayCall.turn_id,
                func.min(GatewayCall.day).label("day"),
                func.sum(GatewayCall.duration_ms).label("inside"),
            )
            .where(GatewayCall.turn_id.isnot(None), GatewayCall.day >= since, GatewayCall.day <= until)
            .group_by(GatewayCall.turn_id)
            .subquery()
        )
        added = Turn.duration_ms - per_turn.c.inside
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(per_turn.c.day, func.avg(Turn.ttft_ms).label("ttft"), func.avg(added).label("added"))
                    .join(Turn, Turn.id == per_turn.c.turn_id)
                    .where(Turn.duration_ms.isnot(None))
                    .group_by(per_turn.c.day)
                    .order_by(per_turn.c.day)
                )
            ).all()
        return [
            dict(
                day=r.day,
                ttft_ms=int(r.ttft) if r.ttft is not None else None,
                added_ms=max(0, int(r.added)) if r.added is not None else None,
            )
            for r in rows
        ]

    async def errors_by_kind(self, since: str, until: str) -> list[tuple[str, int]]:
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(GatewayCall.error_kind, func.count(GatewayCall.id))
                    .where(GatewayCall.outcome == "error", GatewayCall.day >= since, GatewayCall.day <= until)
                    .group_by(GatewayCall.error_kind)
                    .order_by(func.count(GatewayCall.id).desc())
                )
            ).all()
        return [(r[0] or "unknown", int(r[1])) for r in rows]

    async def recent_errors(self, limit: int = 20) -> list[dict]:
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(
                        GatewayCall.created_at,
                        GatewayCall.platform,
                        GatewayCall.user_id,
                        GatewayCall.conversation_id,
                        GatewayCall.error_kind,
                        GatewayCall.error,
                    )
                    .where(GatewayCall.outcome == "error")
                    .order_by(GatewayCall.id.desc())
                    .limit(limit)
                )
            ).all()
        return [
            dict(
                at=r.created_at,
                platform=r.platform,
                user=r.user_id,
                conversation=r.conversation_id,
                kind=r.error_kind or "unknown",
                error=r.error or "",
            )
            for r in rows
        ]

    async def queue_depth(self) -> dict:
        """What waits: user messages not answered yet, and answers being written now."""
        async with self.db.read() as conn:
            pending = (
                await conn.execute(
                    select(func.count(Message.id)).where(Message.role == "user", Message.status == "pending")
                )
            ).scalar_one()
            streaming = (await conn.execute(select(func.count(Turn.id)).where(Turn.status == "streaming"))).scalar_one()
        return dict(pending=int(pending), streaming=int(streaming))

    async def platform_activity(self) -> list[dict]:
        """Per platform: conversations and the newest user message (when the DB last heard)."""
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(
                        Conversation.platform, func.count(func.distinct(Conversation.id)), func.max(Message.created_at)
                    )
                    .select_from(Conversation)
                    .outerjoin(Message, and_(Message.conversation_id == Conversation.id, Message.role == "user"))
                    .group_by(Conversation.platform)
                    .order_by(Conversation.platform)
                )
            ).all()
        return [dict(platform=r[0], conversations=int(r[1]), last_message=r[2]) for r in rows]

    # --- conversations (admin page) ---
    async def search_conversations(
        self,
        *,
        platform: str = "",
        user: str = "",
        text: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
    ) -> list[dict]:
        """Newest first. ``user`` matches an author's id or name; ``text`` any text part."""
        msg_filters = []
        if user:
            like = f"%{user.lower()}%"
            msg_filters.append(
                or_(func.lower(Message.author_id).like(like), func.lower(Message.author_name).like(like))
            )
        if text:
            msg_filters.append(
                Message.id.in_(
                    select(Part.message_id).where(Part.kind == "text", func.lower(Part.text).like(f"%{text.lower()}%"))
                )
            )
        if since is not None:
            msg_filters.append(Message.created_at >= since)
        if until is not None:
            msg_filters.append(Message.created_at < until)
        query = select(
            Conversation.id,
            Conversation.platform,
            Conversation.workspace,
            Conversation.chat,
            Conversation.thread,
            Conversation.epoch,
            Conversation.style,
            Conversation.created_at,
        )
        if platform:
            query = query.where(Conversation.platform == platform)
        if msg_filters:
            query = query.where(Conversation.id.in_(select(Message.conversation_id).where(*msg_filters)))
        query = query.order_by(Conversation.id.desc()).limit(limit)
        async with self.db.read() as conn:
            convs = (await conn.execute(query)).all()
            ids = [c.id for c in convs]
            stats: dict[int, Any] = {}
            if ids:
                for r in (
                    await conn.execute(
                        select(Message.conversation_id, func.count(Message.id), func.max(Message.created_at))
                        .where(Message.conversation_id.in_(ids))
                        .group_by(Message.conversation_id)
                    )
                ).all():
                    stats[r[0]] = r
                costs = {
                    r[0]: r
                    for r in (
                        await conn.execute(
                            select(Turn.conversation_id, func.count(Turn.id), func.coalesce(func.sum(Turn.cost), 0.0))
                            .where(Turn.conversation_id.in_(ids))
                            .group_by(Turn.conversation_id)
                        )
                    ).all()
                }
                people: dict[int, list[str | None]] = {}
                for who in (
                    await conn.execute(
                        select(Message.conversation_id, Message.author_name)
                        .where(Message.conversation_id.in_(ids), Message.role == "user")
                        .distinct()
                    )
                ).all():
                    people.setdefault(who[0], []).append(who[1])
        out = []
        for c in convs:
            s = stats.get(c.id)
            t = costs.get(c.id) if ids else None
            out.append(
                dict(
                    id=c.id,
                    platform=c.platform,
                    workspace=c.workspace,
                    chat=c.chat,
                    thread=c.thread,
                    epoch=c.epoch,
                    style=c.style,
                    created_at=c.created_at,
                    messages=int(s[1]) if s else 0,
                    last_at=s[2] if s else None,
                    turns=int(t[1]) if t else 0,
                    cost=float(t[2] or 0.0) if t else 0.0,
                    people=sorted(p for p in people.get(c.id, []) if p),
                )
            )
        return out

    async def conversation(self, conversation_id: int) -> dict | None:
        async with self.db.read() as conn:
            c = (await conn.execute(select(Conversation).where(Conversation.id == conversation_id))).first()
            if c is None:
                return None
            msgs = (
                await conn.execute(
                    select(Message).where(Message.conversation_id == conversation_id).order_by(Message.seq)
                )
            ).all()
            parts = (
                await conn.execute(
                    select(Part.message_id, Part.kind, Part.text, Part.data)
                    .join(Message, Message.id == Part.message_id)
                    .where(Message.conversation_id == conversation_id)
                    .order_by(Part.message_id, Part.idx)
                )
            ).all()
            turns = (await conn.execute(select(Turn).where(Turn.conversation_id == conversation_id))).all()
            calls = (
                await conn.execute(
                    select(GatewayCall.turn_id, func.count(GatewayCall.id))
                    .where(GatewayCall.conversation_id == conversation_id)
                    .group_by(GatewayCall.turn_id)
                )
            ).all()
        by_message: dict[int, list] = {}
        for p in parts:
            by_message.setdefault(p.message_id, []).append(dict(kind=p.kind, text=p.text, data=p.data))
        call_counts = {r[0]: int(r[1]) for r in calls}
        turn_rows = {
            t.id: dict(
                id=t.id,
                kind=t.kind,
                model=t.model,
                status=t.status,
                prompt_tokens=t.prompt_tokens,
                cached_tokens=t.cached_tokens,
                completion_tokens=t.completion_tokens,
                cost=t.cost,
                ttft_ms=t.ttft_ms,
                duration_ms=t.duration_ms,
                error=t.error,
                calls=call_counts.get(t.id, 0),
                feedback=t.feedback,
            )
            for t in turns
        }
        messages = []
        for m in msgs:
            turn = turn_rows.get(m.turn_id) if m.role == "assistant" and m.turn_id is not None else None
            messages.append(
                dict(
                    id=m.id,
                    seq=m.seq,
                    role=m.role,
                    author_id=m.author_id,
                    author_name=m.author_name,
                    status=m.status,
                    created_at=m.created_at,
                    parts=by_message.get(m.id, []),
                    turn=turn if turn is not None and turn.get("_shown") is None else None,
                )
            )
            if turn is not None:
                turn["_shown"] = True  # a tool chain's several messages show the turn once
        return dict(
            id=c.id,
            platform=c.platform,
            workspace=c.workspace,
            chat=c.chat,
            thread=c.thread,
            epoch=c.epoch,
            style=c.style,
            shared=c.shared,
            created_at=c.created_at,
            messages=messages,
            cost=sum((t["cost"] or 0) for t in turn_rows.values()),
        )

    async def custom_styles(self) -> list[dict]:
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(Conversation.id, Conversation.platform, Conversation.chat, Conversation.style)
                    .where(Conversation.style.isnot(None))
                    .order_by(Conversation.id.desc())
                )
            ).all()
        return [dict(id=r.id, platform=r.platform, chat=r.chat, style=r.style) for r in rows]
