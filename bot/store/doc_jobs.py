"""SQL for documents read in parts (issue 21): jobs, what each has paid for so far (part
notes, scanned-page transcriptions), and the stored document parts they read from and write
back to. Each method is one short transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bot.store.db import Database
from bot.store.models import DocumentJob, DocumentResult, Message, Part, Turn, utcnow

JobState = Literal["new", "asking", "running", "done", "cancelled", "refused"]
ResultKind = Literal["part", "page"]

_J, _R = DocumentJob.__table__, DocumentResult.__table__


@dataclass(slots=True)
class Job:
    id: int
    conversation_id: int
    request_seq: int  # the user message holding the documents
    question: str
    state: JobState
    plan: dict[str, Any] | None
    estimate_tokens: int
    estimate_cost: float
    turn_id: int | None
    progress: list[str]  # platform ids of the progress message ([] before it was posted)
    approved_by: str
    resumes: int
    updated_at: datetime | None = None


@dataclass(slots=True)
class Result:
    kind: ResultKind
    document: int
    number: int
    text: str
    data: dict[str, Any] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(slots=True)
class StoredDocument:
    """A document part of a stored user message, with the file it was read from."""

    message_id: int
    idx: int  # the part's position in its message
    text: str  # what turns see of it (within the budget; after a job, the notes on its parts)
    data: dict[str, Any]
    attachment_id: int | None  # the original file (kept for documents read in parts)


@dataclass(slots=True)
class Interrupted:
    """A running job and how its last turn ended."""

    job: Job
    turn_state: str | None  # turns.status of job.turn_id (None: no turn yet)
    turn_error: str | None


def _job(row: Any) -> Job:
    return Job(
        row.id,
        row.conversation_id,
        row.request_seq,
        row.question,
        row.state,
        row.plan,
        int(row.estimate_tokens or 0),
        float(row.estimate_cost or 0.0),
        row.turn_id,
        list(row.progress or []),
        row.approved_by or "",
        int(row.resumes or 0),
        row.updated_at,
    )


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _insert_ignore(self, table: Any, values: dict) -> Any:
        dialect_insert = sqlite_insert if self.db.sqlite else pg_insert
        return dialect_insert(table).values(**values).on_conflict_do_nothing()

    # --- jobs ---
    async def job(self, job_id: int) -> Job | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(_J).where(_J.c.id == job_id))).first()
        return _job(row) if row is not None else None

    async def job_for(self, conversation_id: int, request_seq: int) -> Job | None:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(_J).where(_J.c.conversation_id == conversation_id, _J.c.request_seq == request_seq)
                )
            ).first()
        return _job(row) if row is not None else None

    async def open(self, conversation_id: int, request_seq: int, question: str) -> Job:
        """The message's job, made on first use (two turns racing get the same one)."""
        now = utcnow()
        async with self.db.write() as conn:
            await conn.execute(
                self._insert_ignore(
                    _J,
                    dict(
                        conversation_id=conversation_id,
                        request_seq=request_seq,
                        question=question,
                        state="new",
                        plan=None,
                        estimate_tokens=0,
                        estimate_cost=0.0,
                        turn_id=None,
                        progress=None,
                        approved_by="",
                        resumes=0,
                        created_at=now,
                        updated_at=now,
                    ),
                )
            )
            row = (
                await conn.execute(
                    select(_J).where(_J.c.conversation_id == conversation_id, _J.c.request_seq == request_seq)
                )
            ).one()
        return _job(row)

    async def waiting(self, conversation_id: int) -> Job | None:
        """The conversation's newest job waiting for a go-ahead."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(_J)
                    .where(_J.c.conversation_id == conversation_id, _J.c.state == "asking")
                    .order_by(_J.c.id.desc())
                    .limit(1)
                )
            ).first()
        return _job(row) if row is not None else None

    async def update(self, job_id: int, **values: Any) -> None:
        async with self.db.write() as conn:
            await conn.execute(update(_J).where(_J.c.id == job_id).values(**values, updated_at=utcnow()))

    async def move(self, job_id: int, to: JobState, *, only_from: tuple[JobState, ...], **values: Any) -> bool:
        """Change the state if it is one of ``only_from`` (atomic: of two clicks on Go ahead,
        one wins). Returns whether it moved."""
        async with self.db.write() as conn:
            result = await conn.execute(
                update(_J)
                .where(_J.c.id == job_id, _J.c.state.in_(only_from))
                .values(state=to, **values, updated_at=utcnow())
            )
            return (result.rowcount or 0) > 0

    async def interrupted(self, since: timedelta) -> list[Interrupted]:
        """Jobs under way (or still being estimated) touched within ``since``, with how their
        last turn ended."""
        cutoff = utcnow() - since
        async with self.db.read() as conn:
            rows = (
                await conn.execute(
                    select(_J, Turn.status.label("turn_state"), Turn.error.label("turn_error"))
                    .select_from(_J.outerjoin(Turn, Turn.id == _J.c.turn_id))
                    .where(_J.c.state.in_(("new", "running")), _J.c.updated_at >= cutoff)
                )
            ).all()
        return [Interrupted(_job(r), r.turn_state, r.turn_error) for r in rows]

    # --- what was paid for ---
    async def results(self, job_id: int, kind: ResultKind) -> dict[tuple[int, int], Result]:
        """(document, number) → result."""
        async with self.db.read() as conn:
            rows = await conn.execute(select(_R).where(_R.c.job_id == job_id, _R.c.kind == kind))
            return {
                (r.document, r.number): Result(
                    r.kind, r.document, r.number, r.text, dict(r.data or {}), r.prompt_tokens, r.completion_tokens
                )
                for r in rows
            }

    async def keep(self, job_id: int, result: Result) -> None:
        """Store a result as soon as it is paid for (a second copy of the same is ignored)."""
        async with self.db.write() as conn:
            await conn.execute(
                self._insert_ignore(
                    _R,
                    dict(
                        job_id=job_id,
                        kind=result.kind,
                        document=result.document,
                        number=result.number,
                        text=result.text,
                        data=result.data or None,
                        prompt_tokens=result.prompt_tokens,
                        completion_tokens=result.completion_tokens,
                        created_at=utcnow(),
                    ),
                )
            )
            await conn.execute(update(_J).where(_J.c.id == job_id).values(updated_at=utcnow()))

    async def count(self, job_id: int, kind: ResultKind) -> int:
        async with self.db.read() as conn:
            return int(
                (
                    await conn.execute(
                        select(func.count()).select_from(_R).where(_R.c.job_id == job_id, _R.c.kind == kind)
                    )
                ).scalar_one()
            )

    # --- the stored message the documents came in ---
    async def documents(self, conversation_id: int, seq: int) -> list[StoredDocument]:
        """The document parts of the user message at ``seq``, in order."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(Part.message_id, Part.idx, Part.text, Part.data, Part.attachment_id)
                .join(Message, Message.id == Part.message_id)
                .where(
                    Message.conversation_id == conversation_id,
                    Message.seq == seq,
                    Message.role == "user",
                    Part.kind == "document",
                )
                .order_by(Part.idx)
            )
            return [
                StoredDocument(r.message_id, r.idx, r.text or "", dict(r.data or {}), r.attachment_id) for r in rows
            ]

    async def message_text(self, conversation_id: int, seq: int) -> str:
        """The text the user wrote with a message (its text parts)."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(Part.text)
                .join(Message, Message.id == Part.message_id)
                .where(Message.conversation_id == conversation_id, Message.seq == seq, Part.kind == "text")
                .order_by(Part.idx)
            )
            return "\n\n".join(r.text for r in rows if r.text)

    async def rewrite_document(self, document: StoredDocument, text: str, data: dict[str, Any]) -> None:
        """What later turns see of a document read in parts: the notes on its parts (or its
        whole text, once scanned pages were transcribed and it fits)."""
        async with self.db.write() as conn:
            await conn.execute(
                update(Part)
                .where(Part.message_id == document.message_id, Part.idx == document.idx)
                .values(text=text, data=data)
            )
