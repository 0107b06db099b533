"""SQL of the MCP tools: the call log (``tool_calls``) and the admin page's access rules
(``tool_access_rules``). Each method is one short transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, desc, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.store.db import Database
from bot.store.models import ToolAccessRule, ToolCallRecord, utcnow

_CALLS, _RULES = ToolCallRecord.__table__, ToolAccessRule.__table__
MAX_ERROR = 500


@dataclass(frozen=True, slots=True)
class NewCall:
    platform: str
    workspace: str
    chat: str
    user_id: str
    conversation_id: int | None
    turn_id: int | None
    server: str
    tool: str
    arguments: str  # redacted JSON


@dataclass(frozen=True, slots=True)
class ServerRule:
    server: str
    platform: str = "*"
    workspace: str = "*"
    chat: str = "*"  # an id, "@groups", "@private" or "*"
    allowed: bool = True
    set_by: str = ""
    set_at: datetime | None = None


class ToolRecords:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- the call log ---
    async def start(self, call: NewCall) -> int:
        async with self.db.write() as conn:
            result = await conn.execute(
                insert(_CALLS)
                .values(
                    started_at=utcnow(),
                    platform=call.platform,
                    workspace=call.workspace,
                    chat=call.chat,
                    user_id=call.user_id,
                    conversation_id=call.conversation_id,
                    turn_id=call.turn_id,
                    server=call.server,
                    tool=call.tool,
                    arguments=call.arguments,
                    outcome="running",
                    error="",
                    decided_by="",
                )
                .returning(_CALLS.c.id)
            )
            return int(result.scalar_one())

    async def finish(self, call_id: int, outcome: str, duration_ms: int, error: str = "") -> None:
        async with self.db.write() as conn:
            await conn.execute(
                update(_CALLS)
                .where(_CALLS.c.id == call_id)
                .values(outcome=outcome, duration_ms=duration_ms, error=error[:MAX_ERROR])
            )

    async def decide(self, call_id: int, turn_id: int, decision: str, by: str) -> bool:
        """Record an admin's decision once: False when the call is unknown, of another turn,
        no longer waiting, or already decided (by another click or another process)."""
        async with self.db.write() as conn:
            result = await conn.execute(
                update(_CALLS)
                .where(
                    _CALLS.c.id == call_id,
                    _CALLS.c.turn_id == turn_id,
                    _CALLS.c.decision.is_(None),
                    _CALLS.c.outcome == "running",
                )
                .values(decision=decision, decided_by=by[:160])
            )
            return result.rowcount == 1

    async def decision(self, call_id: int) -> tuple[str | None, str]:
        async with self.db.read() as conn:
            row = (
                await conn.execute(select(_CALLS.c.decision, _CALLS.c.decided_by).where(_CALLS.c.id == call_id))
            ).first()
        return (row.decision, row.decided_by) if row is not None else (None, "")

    async def close_undecided(self, call_id: int, decision: str) -> bool:
        """No admin answered: the call is closed as ``decision`` unless a click got there first."""
        async with self.db.write() as conn:
            result = await conn.execute(
                update(_CALLS).where(_CALLS.c.id == call_id, _CALLS.c.decision.is_(None)).values(decision=decision)
            )
            return result.rowcount == 1

    async def recent(self, limit: int = 200, *, server: str = "", outcome: str = "") -> list[dict[str, Any]]:
        query = select(_CALLS).order_by(desc(_CALLS.c.id)).limit(limit)
        if server:
            query = query.where(_CALLS.c.server == server)
        if outcome:
            query = query.where(_CALLS.c.outcome == outcome)
        async with self.db.read() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings().all()]

    async def outcomes(self, since: datetime) -> dict[tuple[str, str], int]:
        """Calls per (server, outcome) since ``since``."""
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(_CALLS.c.server, _CALLS.c.outcome, func.count())
                    .where(_CALLS.c.started_at >= since)
                    .group_by(_CALLS.c.server, _CALLS.c.outcome)
                )
            ).all()
        return {(r[0], r[1]): int(r[2]) for r in rows}

    # --- access rules ---
    async def rules(self) -> list[ServerRule]:
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(_RULES).order_by(_RULES.c.server, _RULES.c.platform, _RULES.c.workspace, _RULES.c.chat)
                )
            ).all()
        return [
            ServerRule(r.server, r.platform, r.workspace, r.chat, bool(r.allowed), r.set_by, r.set_at) for r in rows
        ]

    async def set_rule(self, rule: ServerRule) -> None:
        values = dict(
            server=rule.server,
            platform=rule.platform,
            workspace=rule.workspace,
            chat=rule.chat,
            allowed=rule.allowed,
            set_by=rule.set_by,
            set_at=utcnow(),
        )
        stmt = (sqlite_insert if self.db.sqlite else pg_insert)(_RULES).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["server", "platform", "workspace", "chat"],
            set_={"allowed": stmt.excluded.allowed, "set_by": stmt.excluded.set_by, "set_at": stmt.excluded.set_at},
        )
        async with self.db.write() as conn:
            await conn.execute(stmt)

    async def remove_rule(self, server: str, platform: str, workspace: str, chat: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                delete(_RULES).where(
                    _RULES.c.server == server,
                    _RULES.c.platform == platform,
                    _RULES.c.workspace == workspace,
                    _RULES.c.chat == chat,
                )
            )
