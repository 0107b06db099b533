"""The store's operations, each one short transaction with a fixed number of statements.

Nothing here is per token: an answer is written when it starts, at checkpoints (paced by
time, not by tokens) and when it ends.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.turns import MessageStatus, Role, TurnKind, TurnRecord, TurnRequest, TurnState, TurnUsage
from bot.platform.messages import ConversationKey
from bot.store.db import Database
from bot.store.models import AttachmentRecord, Conversation, InboundEvent, Message, Part, Turn, utcnow

# The statements of every turn, built once (Core, on the tables: no ORM layer). SQLAlchemy
# memoises a statement object's cache key, so executing the same object with new parameters
# skips building and cache-keying it again, which cost more CPU than the database did.
_C, _M, _P, _T, _A = (
    Conversation.__table__,
    Message.__table__,
    Part.__table__,
    Turn.__table__,
    AttachmentRecord.__table__,
)
_CONVERSATION_COLS = (
    _C.c.id,
    _C.c.epoch,
    _C.c.history_start,
    _C.c.token_ratio,
    _C.c.style,
    _C.c.shared,
    _C.c.left_at,
    _C.c.character_id,
)
_SELECT_CONVERSATION = (
    select(*_CONVERSATION_COLS)
    .where(
        _C.c.platform == bindparam("platform"),
        _C.c.workspace == bindparam("workspace"),
        _C.c.chat == bindparam("chat"),
        _C.c.thread == bindparam("thread"),
    )
    .order_by(_C.c.epoch.desc())
    .limit(1)
)
_SELECT_CONVERSATION_BY_ID = select(
    _C.c.platform,
    _C.c.workspace,
    _C.c.chat,
    _C.c.thread,
    _C.c.epoch,
    _C.c.history_start,
    _C.c.token_ratio,
    _C.c.style,
    _C.c.shared,
    _C.c.left_at,
    _C.c.character_id,
).where(_C.c.id == bindparam("cid"))
_NEXT_SEQ = update(_C).where(_C.c.id == bindparam("cid")).values(next_seq=_C.c.next_seq + 1).returning(_C.c.next_seq)
_INSERT_MESSAGE = insert(_M).returning(_M.c.id)
_INSERT_PART = insert(_P)
_INSERT_TURN = insert(_T).returning(_T.c.id)
_SELECT_PENDING = (
    select(_M.c.id, _M.c.seq, _M.c.request, _M.c.author_id, _M.c.platform_message_id)
    .where(_M.c.conversation_id == bindparam("cid"), _M.c.role == "user", _M.c.status == "pending")
    .order_by(_M.c.seq)
)
# One read for the whole thread: every message joined to its parts (a message always has at
# least one part; the outer join keeps one that has none).
_SELECT_HISTORY = (
    select(
        _M.c.id,
        _M.c.seq,
        _M.c.role,
        _M.c.author_name,
        _M.c.status,
        _M.c.turn_id,
        _P.c.kind,
        _P.c.text,
        _P.c.data,
        _P.c.attachment_id,
        _A.c.mime,
    )
    .select_from(_M.outerjoin(_P, _P.c.message_id == _M.c.id).outerjoin(_A, _A.c.id == _P.c.attachment_id))
    .where(_M.c.conversation_id == bindparam("cid"), _M.c.seq >= bindparam("from_seq"), _M.c.status != "superseded")
    .order_by(_M.c.seq, _P.c.idx)
)
_SET_TEXT = update(_P).where(_P.c.message_id == bindparam("b_mid"), _P.c.idx == 0).values(text=bindparam("b_text"))
_SET_PAGES = update(_T).where(_T.c.id == bindparam("b_tid")).values(pages=bindparam("b_pages"))
_OPEN_TURN_ANSWER = (
    update(_T)
    .where(_T.c.id == bindparam("b_tid"))
    .values(response_message_id=bindparam("b_mid"), pages=bindparam("b_pages"))
)
_SET_MESSAGE_STATUS = update(_M).where(_M.c.id == bindparam("b_mid")).values(status=bindparam("b_status"))
_FINISH_TURN = (
    update(_T)
    .where(_T.c.id == bindparam("b_tid"))
    .values(
        status=bindparam("b_status"),
        response_message_id=bindparam("b_mid"),
        finish_reason=bindparam("b_finish"),
        pages=bindparam("b_pages"),
        prompt_tokens=bindparam("b_prompt"),
        completion_tokens=bindparam("b_completion"),
        cached_tokens=bindparam("b_cached"),
        ttft_ms=bindparam("b_ttft"),
        duration_ms=bindparam("b_duration"),
        error=bindparam("b_error"),
        finished_at=bindparam("b_finished"),
    )
)
_MARK_ANSWERED = (
    update(_M)
    .where(
        _M.c.conversation_id == bindparam("b_cid"),
        _M.c.seq.in_(bindparam("b_seqs", expanding=True)),
        _M.c.role == "user",
    )
    .values(status="answered")
)
_SET_TOKEN_RATIO = update(_C).where(_C.c.id == bindparam("b_cid")).values(token_ratio=bindparam("b_ratio"))


@dataclass(slots=True)
class ConversationRow:
    id: int
    key: ConversationKey
    epoch: int
    history_start: int
    token_ratio: float
    style: str | None
    shared: bool = False
    left: bool = False  # the bot was removed from the chat
    character_id: int | None = None  # the character it speaks as (bot.store.characters)


@dataclass(slots=True)
class StoredPart:
    kind: str
    text: str | None = None
    data: dict | None = None
    attachment_id: int | None = None
    mime: str | None = None


@dataclass(slots=True)
class StoredMessage:
    id: int
    seq: int
    role: Role
    author_name: str
    status: MessageStatus
    turn_id: int | None
    parts: list[StoredPart] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(p.text or "" for p in self.parts if p.kind == "text")


@dataclass(slots=True)
class NewPart:
    kind: str
    text: str | None = None
    data: dict | None = None
    blob: bytes | None = None  # stored once per sha256 in attachments
    mime: str | None = None


@dataclass(slots=True)
class RecoveredAnswer:
    key: ConversationKey
    turn_id: int
    text: str
    pages: list[str]  # platform ids of every message the answer had written


@dataclass(slots=True)
class PendingMessage:
    """A user message waiting for an answer: the conversation's queue, in arrival order."""

    id: int
    seq: int
    request: TurnRequest | None
    author_id: str
    platform_message_id: str


@dataclass(slots=True)
class FinishedTurn:
    """Everything a turn's end stores, in one transaction."""

    turn_id: int
    conversation_id: int
    message_id: int | None  # the answer's message, if streaming created it already
    seq: int  # the answer's reserved position
    text: str  # the final answer text ("" for a turn that ended with a notice only)
    extra_parts: list[NewPart]
    pages: list[str]
    state: TurnState
    finish_reason: str | None
    usage: TurnUsage
    ttft_ms: int | None
    duration_ms: int
    error: str | None
    answered_seqs: list[int]
    token_ratio: float | None  # a new usage/estimate ratio for the conversation, if it moved


@dataclass(slots=True)
class UsageSummary:
    turns: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- conversations ---
    async def conversation(
        self, key: ConversationKey, *, create: bool = True, shared: bool = False
    ) -> ConversationRow | None:
        query = _SELECT_CONVERSATION
        params = {"platform": key.platform, "workspace": key.workspace, "chat": key.chat, "thread": key.thread}
        async with self.db.read() as conn:
            row = (await conn.execute(query, params)).first()
        if row is None and create:
            # A new thread of a chat starts speaking as the chat's character (issue 17).
            await self._insert_conversation(key, 0, shared=shared, character_id=await self._chat_character(key))
            async with self.db.read() as conn:
                row = (await conn.execute(query, params)).first()
        if row is None:
            return None
        if shared and not row.shared:  # a chat that became a group (or an older row)
            async with self.db.write() as conn:
                await conn.execute(update(Conversation).where(Conversation.id == row.id).values(shared=True))
        return ConversationRow(
            row.id,
            key,
            row.epoch,
            row.history_start,
            row.token_ratio,
            row.style,
            bool(row.shared) or shared,
            row.left_at is not None,
            row.character_id,
        )

    async def _chat_character(self, key: ConversationKey) -> int | None:
        """The character of ``key``'s chat as a whole (its thread "" conversation), for a new thread."""
        if not key.thread:
            return None
        async with self.db.read() as conn:
            return (
                await conn.execute(
                    _SELECT_CONVERSATION.with_only_columns(_C.c.character_id),
                    {"platform": key.platform, "workspace": key.workspace, "chat": key.chat, "thread": ""},
                )
            ).scalar()

    async def conversation_by_id(self, conversation_id: int) -> ConversationRow | None:
        async with self.db.read() as conn:
            return await self._conversation_by_id(conn, conversation_id)

    async def _conversation_by_id(self, conn: AsyncConnection, conversation_id: int) -> ConversationRow | None:
        row = (await conn.execute(_SELECT_CONVERSATION_BY_ID, {"cid": conversation_id})).first()
        if row is None:
            return None
        return ConversationRow(
            conversation_id,
            ConversationKey(row.platform, row.workspace, row.chat, row.thread),
            row.epoch,
            row.history_start,
            row.token_ratio,
            row.style,
            bool(row.shared),
            row.left_at is not None,
            row.character_id,
        )

    async def work(self, conversation_id: int) -> tuple[ConversationRow | None, list[PendingMessage]]:
        """A worker's look at its conversation: the messages waiting and, when there are
        any, the conversation (one connection; no conversation read when nothing waits)."""
        async with self.db.read() as conn:
            pending = await self._pending(conn, conversation_id)
            conv = await self._conversation_by_id(conn, conversation_id) if pending else None
        return conv, (pending if conv is not None else [])

    async def mark_left(self, platform: str, workspace: str, chat: str, left: bool) -> None:
        """The bot was removed from (or added back to) a chat: every thread of it, every epoch."""
        async with self.db.write() as conn:
            await conn.execute(
                update(Conversation)
                .where(
                    Conversation.platform == platform, Conversation.workspace == workspace, Conversation.chat == chat
                )
                .values(left_at=utcnow() if left else None)
            )

    async def _insert_conversation(
        self,
        key: ConversationKey,
        epoch: int,
        style: str | None = None,
        shared: bool = False,
        character_id: int | None = None,
    ) -> None:
        values = dict(
            platform=key.platform,
            workspace=key.workspace,
            chat=key.chat,
            thread=key.thread,
            epoch=epoch,
            next_seq=0,
            history_start=0,
            token_ratio=1.0,
            style=style,
            shared=shared,
            character_id=character_id,
            created_at=utcnow(),
        )
        async with self.db.write() as conn:
            await conn.execute(self._insert_ignore(Conversation, values))

    def _insert_ignore(self, model: type, values: dict) -> Any:
        dialect_insert = sqlite_insert if self.db.sqlite else pg_insert
        return dialect_insert(model).values(**values).on_conflict_do_nothing()

    async def new_epoch(self, key: ConversationKey) -> ConversationRow:
        """``/new``: a fresh thread under the same key; the style and the character carry over."""
        current = await self.conversation(key)
        assert current is not None
        await self._insert_conversation(key, current.epoch + 1, current.style, current.shared, current.character_id)
        row = await self.conversation(key)
        assert row is not None
        return row

    async def set_style(self, conversation_id: int, style: str | None) -> None:
        async with self.db.write() as conn:
            await conn.execute(update(Conversation).where(Conversation.id == conversation_id).values(style=style))

    async def set_history_start(self, conversation_id: int, seq: int) -> None:
        async with self.db.write() as conn:
            await conn.execute(update(Conversation).where(Conversation.id == conversation_id).values(history_start=seq))

    # --- messages ---
    async def add_message(
        self,
        conversation_id: int,
        role: Role,
        parts: list[NewPart],
        *,
        status: MessageStatus,
        author_id: str = "",
        author_name: str = "",
        platform_message_id: str = "",
        turn_id: int | None = None,
        request: TurnRequest | None = None,
        seq: int | None = None,
    ) -> tuple[int, int]:
        """Insert a message and its parts in one transaction. Returns (message id, seq).
        ``seq`` is a position reserved earlier (an answer's, at the start of its turn)."""
        async with self.db.write() as conn:
            if seq is None:
                seq = await self._next_seq(conn, conversation_id)
            message_id = (
                await conn.execute(
                    _INSERT_MESSAGE,
                    dict(
                        conversation_id=conversation_id,
                        seq=seq,
                        role=role,
                        author_id=author_id,
                        author_name=author_name,
                        platform_message_id=platform_message_id,
                        status=status,
                        turn_id=turn_id,
                        request=request.to_json() if request is not None else None,
                        created_at=utcnow(),
                    ),
                )
            ).scalar_one()
            await self._insert_parts(conn, message_id, parts)
        return message_id, seq

    async def _insert_parts(self, conn: AsyncConnection, message_id: int, parts: list[NewPart], start: int = 0) -> None:
        """``parts`` of ``message_id`` from index ``start`` on, their files stored once each."""
        rows = []
        for idx, part in enumerate(parts, start):
            attachment_id = None
            if part.blob is not None:
                attachment_id = await self._attachment(conn, part.blob, part.mime or "")
            rows.append(
                dict(
                    message_id=message_id,
                    idx=idx,
                    kind=part.kind,
                    text=part.text,
                    data=part.data,
                    attachment_id=attachment_id,
                )
            )
        if rows:
            await conn.execute(_INSERT_PART, rows if len(rows) > 1 else rows[0])

    async def has_user_message(self, conversation_id: int, platform_message_id: str) -> bool:
        """Whether the platform's message ``platform_message_id`` is stored in the conversation."""
        async with self.db.read() as conn:
            found = await conn.execute(
                select(Message.id)
                .where(
                    Message.conversation_id == conversation_id,
                    Message.role == "user",
                    Message.platform_message_id == platform_message_id,
                )
                .limit(1)
            )
            return found.first() is not None

    async def drop_context_copy(self, conversation_id: int, platform_message_id: str) -> int:
        """Delete the context copy of a user message (and its parts); returns how many."""
        async with self.db.write() as conn:
            ids = (
                (
                    await conn.execute(
                        select(Message.id).where(
                            Message.conversation_id == conversation_id,
                            Message.role == "user",
                            Message.status == "context",
                            Message.platform_message_id == platform_message_id,
                        )
                    )
                )
                .scalars()
                .all()
            )
            if ids:
                await conn.execute(delete(Part).where(Part.message_id.in_(ids)))
                await conn.execute(delete(Message).where(Message.id.in_(ids)))
            return len(ids)

    async def join_message(self, message_id: int, parts: list[NewPart], *, pending: bool) -> bool:
        """A burst: ``parts`` (a later message of the same author) join an unanswered user
        message, after its own parts; ``pending``: it now waits for an answer. False (and
        nothing changed) when the message was answered meanwhile."""
        async with self.db.write() as conn:
            status = "pending" if pending else "context"
            joined = await conn.execute(
                update(Message)
                .where(Message.id == message_id, Message.role == "user", Message.status.in_(["pending", "context"]))
                .values(status=status)
            )
            if not joined.rowcount:
                return False
            start = (
                await conn.execute(select(func.coalesce(func.max(Part.idx), -1)).where(Part.message_id == message_id))
            ).scalar_one() + 1
            await self._insert_parts(conn, message_id, parts, start)
        return True

    async def _next_seq(self, conn: AsyncConnection, conversation_id: int) -> int:
        return (await conn.execute(_NEXT_SEQ, {"cid": conversation_id})).scalar_one()

    async def _attachment(self, conn: AsyncConnection, blob: bytes, mime: str) -> int:
        digest = hashlib.sha256(blob).hexdigest()
        dialect_insert = sqlite_insert if self.db.sqlite else pg_insert
        await conn.execute(
            dialect_insert(AttachmentRecord)
            .values(sha256=digest, mime=mime, size=len(blob), data=blob, created_at=utcnow())
            .on_conflict_do_nothing()
        )
        return (await conn.execute(select(AttachmentRecord.id).where(AttachmentRecord.sha256 == digest))).scalar_one()

    async def set_message_status(self, message_ids: list[int], status: MessageStatus) -> None:
        if not message_ids:
            return
        async with self.db.write() as conn:
            await conn.execute(update(Message).where(Message.id.in_(message_ids)).values(status=status))

    async def pending(self, conversation_id: int) -> list[PendingMessage]:
        """The user messages waiting for an answer, oldest first."""
        async with self.db.read() as conn:
            return await self._pending(conn, conversation_id)

    async def _pending(self, conn: AsyncConnection, conversation_id: int) -> list[PendingMessage]:
        rows = await conn.execute(_SELECT_PENDING, {"cid": conversation_id})
        return [
            PendingMessage(
                r.id, r.seq, TurnRequest.from_json(r.request), r.author_id or "", r.platform_message_id or ""
            )
            for r in rows
        ]

    async def history(self, conversation_id: int, from_seq: int = 0) -> list[StoredMessage]:
        """Messages with their parts, oldest first, skipping superseded answers."""
        messages: dict[int, StoredMessage] = {}
        async with self.db.read() as conn:
            rows = await conn.execute(_SELECT_HISTORY, {"cid": conversation_id, "from_seq": from_seq})
            for r in rows:
                message = messages.get(r.id)
                if message is None:
                    message = messages[r.id] = StoredMessage(r.id, r.seq, r.role, r.author_name, r.status, r.turn_id)
                if r.kind is not None:
                    message.parts.append(StoredPart(r.kind, r.text, r.data, r.attachment_id, r.mime))
        return list(messages.values())

    async def attachment_data(self, attachment_ids: list[int]) -> dict[int, bytes]:
        if not attachment_ids:
            return {}
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(AttachmentRecord.id, AttachmentRecord.data).where(AttachmentRecord.id.in_(attachment_ids))
            )
            return {r.id: r.data for r in rows}

    # --- turns ---
    async def start_turn(
        self,
        conversation_id: int,
        request_seq: int,
        model: str,
        options: dict,
        kind: str = TurnKind.CHAT,
        estimated_tokens: int | None = None,
    ) -> tuple[int, int]:
        """Open a turn and reserve the answer's place right after the question, so that
        messages arriving mid-answer come after it. Returns (turn id, answer seq)."""
        async with self.db.write() as conn:
            answer_seq = await self._next_seq(conn, conversation_id)
            turn_id = (
                await conn.execute(
                    _INSERT_TURN,
                    dict(
                        conversation_id=conversation_id,
                        request_seq=request_seq,
                        kind=str(kind),
                        model=model,
                        options=options,
                        status=str(TurnState.STREAMING),
                        estimated_tokens=estimated_tokens,
                        owner=self.db.instance,
                        started_at=utcnow(),
                    ),
                )
            ).scalar_one()
        return turn_id, answer_seq

    async def open_answer(self, conversation_id: int, turn_id: int, seq: int, text: str, refs: list[str]) -> int:
        """The assistant message exists from the first streamed text on (one transaction,
        so a failure leaves nothing half-made for the next attempt to collide with)."""
        async with self.db.write() as conn:
            message_id = await self._insert_answer(conn, conversation_id, turn_id, seq, "streaming", text)
            await conn.execute(_OPEN_TURN_ANSWER, {"b_tid": turn_id, "b_mid": message_id, "b_pages": refs})
        return message_id

    async def _insert_answer(
        self, conn: AsyncConnection, conversation_id: int, turn_id: int, seq: int, status: str, text: str
    ) -> int:
        message_id = (
            await conn.execute(
                _INSERT_MESSAGE,
                dict(
                    conversation_id=conversation_id,
                    seq=seq,
                    role="assistant",
                    author_id="",
                    author_name="",
                    platform_message_id="",
                    status=status,
                    turn_id=turn_id,
                    created_at=utcnow(),
                ),
            )
        ).scalar_one()
        await conn.execute(_INSERT_PART, dict(message_id=message_id, idx=0, kind="text", text=text))
        return message_id

    async def checkpoint(self, turn_id: int, message_id: int, text: str, refs: list[str] | None) -> None:
        """Save the text so far (one UPDATE); ``refs`` only when the answer's messages changed."""
        async with self.db.write() as conn:
            await conn.execute(_SET_TEXT, {"b_mid": message_id, "b_text": text})
            if refs is not None:
                await conn.execute(_SET_PAGES, {"b_tid": turn_id, "b_pages": refs})

    async def finish_answer(self, done: FinishedTurn) -> int | None:
        """Close the turn: final text, reasoning/tool parts, usage, timings, every page it
        wrote, and mark the user messages it answered. One transaction."""
        status = str(done.state)
        message_id = done.message_id
        async with self.db.write() as conn:
            if message_id is None and (done.text or done.extra_parts):
                message_id = await self._insert_answer(
                    conn, done.conversation_id, done.turn_id, done.seq, status, done.text
                )
            elif message_id is not None:
                await conn.execute(_SET_TEXT, {"b_mid": message_id, "b_text": done.text})
                await conn.execute(_SET_MESSAGE_STATUS, {"b_mid": message_id, "b_status": status})
            if message_id is not None and done.extra_parts:
                rows = [
                    dict(message_id=message_id, idx=i + 1, kind=p.kind, text=p.text, data=p.data, attachment_id=None)
                    for i, p in enumerate(done.extra_parts)
                ]
                await conn.execute(_INSERT_PART, rows if len(rows) > 1 else rows[0])
            usage = done.usage
            counted = usage.calls > 0
            await conn.execute(
                _FINISH_TURN,
                dict(
                    b_tid=done.turn_id,
                    b_status=status,
                    b_mid=message_id,
                    b_finish=done.finish_reason,
                    b_pages=done.pages,
                    b_prompt=usage.prompt_tokens if counted else None,
                    b_completion=usage.completion_tokens if counted else None,
                    b_cached=usage.cached_tokens if counted else None,
                    b_ttft=done.ttft_ms,
                    b_duration=done.duration_ms,
                    b_error=done.error,
                    b_finished=utcnow(),
                ),
            )
            if done.answered_seqs:
                await conn.execute(_MARK_ANSWERED, {"b_cid": done.conversation_id, "b_seqs": done.answered_seqs})
            if done.token_ratio is not None:
                await conn.execute(_SET_TOKEN_RATIO, {"b_cid": done.conversation_id, "b_ratio": done.token_ratio})
        return message_id

    async def add_tool_messages(
        self, conversation_id: int, turn_id: int, assistant_parts: list[NewPart], results: list[NewPart]
    ) -> None:
        """One step of a tool-call chain: the assistant's calls (with its reasoning and
        text, unchanged, as MiniMax requires) and the tools' results."""
        await self.add_message(conversation_id, "assistant", assistant_parts, status="complete", turn_id=turn_id)
        await self.add_message(conversation_id, "tool", results, status="complete", turn_id=turn_id)

    async def turn(self, turn_id: int) -> TurnRecord | None:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(
                        Turn.id,
                        Turn.conversation_id,
                        Turn.request_seq,
                        Turn.response_message_id,
                        Turn.kind,
                        Turn.status,
                        Turn.options,
                        Turn.feedback,
                        Turn.pages,
                        Conversation.platform,
                        Conversation.workspace,
                        Conversation.chat,
                        Conversation.thread,
                    )
                    .join(Conversation, Conversation.id == Turn.conversation_id)
                    .where(Turn.id == turn_id)
                )
            ).first()
        if row is None:
            return None
        kind = row.kind
        options = row.options or {}
        request = TurnRequest.from_json(options.get("request"))
        if request is None and (kind != TurnKind.CHAT or options.get("extra")):
            request = TurnRequest(kind, dict(options.get("extra") or {}))  # rows from before 0002
        return TurnRecord(
            id=row.id,
            conversation_id=row.conversation_id,
            key=ConversationKey(row.platform, row.workspace, row.chat, row.thread),
            request_seq=row.request_seq,
            response_message_id=row.response_message_id,
            kind=kind,
            state=TurnState(row.status),
            request=request,
            feedback=row.feedback,
            pages=tuple(row.pages or ()),
        )

    async def streaming_turn(self, conversation_id: int) -> int | None:
        async with self.db.read() as conn:
            return (
                await conn.execute(
                    select(Turn.id)
                    .where(Turn.conversation_id == conversation_id, Turn.status == str(TurnState.STREAMING))
                    .order_by(Turn.id.desc())
                    .limit(1)
                )
            ).scalar()

    async def waiting_conversations(self, platforms: list[str]) -> list[int]:
        """Conversations on these platforms with user messages waiting for an answer."""
        if not platforms:
            return []
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(Message.conversation_id)
                .distinct()
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(
                    Message.role == "user",
                    Message.status == "pending",
                    Conversation.platform.in_(platforms),
                    Conversation.left_at.is_(None),
                )
            )
            return [r.conversation_id for r in rows]

    async def latest_turn(self, conversation_id: int, kinds: tuple[str, ...], state: TurnState) -> int | None:
        async with self.db.read() as conn:
            return (
                await conn.execute(
                    select(Turn.id)
                    .where(
                        Turn.conversation_id == conversation_id,
                        Turn.kind.in_([str(k) for k in kinds]),
                        Turn.status == str(state),
                    )
                    .order_by(Turn.id.desc())
                    .limit(1)
                )
            ).scalar()

    async def part_data(self, message_id: int, kind: str) -> dict | None:
        """The ``data`` of a message's first part of ``kind`` (e.g. stored copy variants)."""
        async with self.db.read() as conn:
            return (
                await conn.execute(select(Part.data).where(Part.message_id == message_id, Part.kind == kind).limit(1))
            ).scalar()

    async def reopen_question(self, conversation_id: int, seq: int, request: TurnRequest | None) -> None:
        """Regenerate: the user message at ``seq`` waits for an answer again, asking for
        the same kind of answer as before."""
        async with self.db.write() as conn:
            await conn.execute(
                update(Message)
                .where(Message.conversation_id == conversation_id, Message.seq == seq, Message.role == "user")
                .values(status="pending", request=request.to_json() if request is not None else None)
            )

    async def set_feedback(self, turn_id: int, user_id: str, value: int) -> None:
        async with self.db.write() as conn:
            await conn.execute(update(Turn).where(Turn.id == turn_id).values(feedback=value, feedback_by=user_id))

    async def supersede(self, message_id: int) -> None:
        await self.set_message_status([message_id], "superseded")

    async def usage(self, conversation_id: int) -> UsageSummary:
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(
                        func.count(Turn.id),
                        func.coalesce(func.sum(Turn.prompt_tokens), 0),
                        func.coalesce(func.sum(Turn.completion_tokens), 0),
                        func.coalesce(func.sum(Turn.cached_tokens), 0),
                    ).where(Turn.conversation_id == conversation_id)
                )
            ).one()
        return UsageSummary(int(row[0]), int(row[1] or 0), int(row[2] or 0), int(row[3] or 0))

    # --- recovery after a crash ---
    async def recover_streaming(self, marker: str) -> list[RecoveredAnswer]:
        """Turns left streaming by a dead process are finalised as interrupted.

        SQLite has one process, so every streaming turn not ours is dead. On PostgreSQL,
        other processes may be streaming right now: only turns whose owner no longer holds
        its liveness lock are taken (checked twice, outside the write transaction)."""
        async with self.db.read() as conn:
            owners = {
                owner
                for owner in (
                    await conn.execute(
                        select(Turn.owner)
                        .where(Turn.status == str(TurnState.STREAMING), Turn.owner.is_not(None))
                        .distinct()
                    )
                ).scalars()
                if owner is not None
            }
        dead_owners = await self.db.dead_owners(owners)
        async with self.db.write() as conn:
            rows = (
                await conn.execute(
                    select(
                        Turn.id,
                        Turn.response_message_id,
                        Turn.conversation_id,
                        Turn.owner,
                        Turn.pages,
                        Turn.request_seq,
                        Conversation.platform,
                        Conversation.workspace,
                        Conversation.chat,
                        Conversation.thread,
                    )
                    .join(Conversation, Conversation.id == Turn.conversation_id)
                    .where(Turn.status == str(TurnState.STREAMING))
                )
            ).all()
            recovered = []
            for row in rows:
                if row.owner is not None and row.owner not in dead_owners:
                    continue  # ours, alive, or started after the check
                text, refs = "", list(row.pages or [])
                if row.response_message_id is not None:
                    part = (
                        await conn.execute(
                            select(Part.text).where(Part.message_id == row.response_message_id, Part.idx == 0)
                        )
                    ).first()
                    text = (part.text or "") if part else ""
                    final = (text + "\n\n" + marker) if text else marker
                    await conn.execute(
                        update(Part).where(Part.message_id == row.response_message_id, Part.idx == 0).values(text=final)
                    )
                    await conn.execute(
                        update(Message).where(Message.id == row.response_message_id).values(status="interrupted")
                    )
                    text = final
                await conn.execute(
                    update(Turn)
                    .where(Turn.id == row.id)
                    .values(status=str(TurnState.INTERRUPTED), error="process stopped mid-answer", finished_at=utcnow())
                )
                # The interrupted answer is their answer: they don't go back in the queue.
                await conn.execute(
                    update(Message)
                    .where(
                        Message.conversation_id == row.conversation_id,
                        Message.role == "user",
                        Message.status == "pending",
                        Message.seq <= row.request_seq,
                    )
                    .values(status="answered")
                )
                recovered.append(
                    RecoveredAnswer(
                        ConversationKey(row.platform, row.workspace, row.chat, row.thread), row.id, text, refs
                    )
                )
        return recovered

    # --- inbound events ---
    async def claim_event(self, platform: str, event_id: str) -> bool:
        """True the first time an event is seen, in any process."""
        values = dict(platform=platform, event_id=event_id[:128], received_at=utcnow())
        async with self.db.write() as conn:
            result = await conn.execute(self._insert_ignore(InboundEvent, values))
            return (result.rowcount or 0) > 0

    async def prune_events(self, older_than: timedelta = timedelta(days=7)) -> int:
        from sqlalchemy import delete

        cutoff = datetime.now(UTC) - older_than
        async with self.db.write() as conn:
            result = await conn.execute(delete(InboundEvent).where(InboundEvent.received_at < cutoff))
            return result.rowcount or 0
