"""The schema. Messages are made of ordered parts; a turn (one answer: model, options,
tokens, timings) is kept apart from the message content, as simonw/llm does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    # Every model here maps one Table (SQLAlchemy types the attribute as the wider FromClause);
    # the stores build Core statements on it.
    __table__: ClassVar[Table]


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("platform", "workspace", "chat", "thread", "epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    workspace: Mapped[str] = mapped_column(String(64))
    chat: Mapped[str] = mapped_column(String(128))
    thread: Mapped[str] = mapped_column(String(128), default="")
    epoch: Mapped[int] = mapped_column(Integer, default=0)  # /new bumps it
    next_seq: Mapped[int] = mapped_column(Integer, default=0)
    history_start: Mapped[int] = mapped_column(Integer, default=0)  # oldest seq still sent
    token_ratio: Mapped[float] = mapped_column(Float, default=1.0)  # usage / estimate
    style: Mapped[str | None] = mapped_column(Text, nullable=True)  # style id or custom text
    shared: Mapped[bool] = mapped_column(Boolean, default=False)  # several people talk here
    # The bot was removed from the chat (or blocked): nothing is sent there until it is back.
    left_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The character the conversation speaks as (issue 17); /new copies it to the next epoch.
    # No foreign key: SQLite can add one only by copying the table, and dropping the old copy
    # would cascade into messages and turns. Deleting a character clears it here itself.
    character_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AttachmentRecord(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    mime: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("conversation_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))  # user, assistant, tool
    author_id: Mapped[str] = mapped_column(String(128), default="")
    author_name: Mapped[str] = mapped_column(String(256), default="")
    platform_message_id: Mapped[str] = mapped_column(String(128), default="")
    # user: pending -> answered | context; assistant: streaming -> complete | interrupted |
    # stopped | error | superseded (replaced by a regeneration)
    status: Mapped[str] = mapped_column(String(16))
    turn_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # A pending message that asks for more than a plain answer: {"kind": ..., "extra": ...}
    request: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Part(Base):
    __tablename__ = "parts"
    __table_args__ = (UniqueConstraint("message_id", "idx"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    idx: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # text, image, document, reasoning,
    #                                                tool_call, tool_result, note
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    data: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    attachment_id: Mapped[int | None] = mapped_column(ForeignKey("attachments.id"), nullable=True, index=True)


class Turn(Base):
    __tablename__ = "turns"
    __table_args__ = (Index("ix_turns_status", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    request_seq: Mapped[int] = mapped_column(Integer)  # the newest user message answered
    response_message_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default="chat")  # chat, copy, refine
    model: Mapped[str] = mapped_column(String(128))
    options: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # streaming, complete, interrupted, stopped, error
    owner: Mapped[str | None] = mapped_column(String(36), nullable=True)  # the process streaming it
    pages: Mapped[list | None] = mapped_column(JSON, nullable=True)  # platform ids of every message written
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cached_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    estimated_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ttft_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    finish_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    feedback: Mapped[int | None] = mapped_column(Integer, nullable=True)
    feedback_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    cost: Mapped[float | None] = mapped_column(Float, nullable=True)  # sum of its gateway calls (issue 11)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class InboundEvent(Base):
    __tablename__ = "inbound_events"
    __table_args__ = (UniqueConstraint("platform", "event_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# --- operators (issue 11): usage ledger, quota counters and limits, access, the admin page ---


class GatewayCall(Base):
    """One call to the model: the ledger reports, charts and costs are read from.

    A turn may make several calls (tool rounds, copy retries and fixes, refinements); each is
    priced on its own from the usage the gateway reported for it. ``day`` is the local date
    (BOT_TIMEZONE) so every database groups by day the same way without date functions."""

    __tablename__ = "gateway_calls"
    __table_args__ = (Index("ix_gateway_calls_day_user", "day", "platform", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    turn_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    conversation_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    platform: Mapped[str] = mapped_column(String(32), default="")
    user_id: Mapped[str] = mapped_column(String(128), default="")
    kind: Mapped[str] = mapped_column(String(16), default="chat")  # the turn's kind
    model: Mapped[str] = mapped_column(String(128), default="")
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD in BOT_TIMEZONE
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)  # cached ones included
    cached_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    ttft_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)  # to the first event
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str] = mapped_column(String(16), default="ok")  # ok, error, cancelled
    error_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UsageCounter(Base):
    """Running totals per quota subject and period, incremented by an upsert (atomic in
    SQLite and PostgreSQL, across processes)."""

    __tablename__ = "usage_counters"
    __table_args__ = (UniqueConstraint("scope", "subject", "period", "period_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))  # user, conversation, global
    subject: Mapped[str] = mapped_column(String(192))  # "platform:user", conversation id, ""
    period: Mapped[str] = mapped_column(String(8))  # day, month
    period_start: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD or YYYY-MM
    tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    calls: Mapped[int] = mapped_column(Integer, default=0)


class QuotaLimit(Base):
    """A limit set at runtime. No row: the configured default applies. A row with neither
    ``tokens`` nor ``cost``: no limit (lifted). Subject "*" is the default for its scope."""

    __tablename__ = "quota_limits"
    __table_args__ = (UniqueConstraint("scope", "subject", "period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(192))
    period: Mapped[str] = mapped_column(String(8))
    tokens: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cost: Mapped[float | None] = mapped_column(Float, nullable=True)
    updated_by: Mapped[str] = mapped_column(String(128), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BlockedUser(Base):
    __tablename__ = "blocked_users"
    __table_args__ = (UniqueConstraint("platform", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    blocked_by: Mapped[str] = mapped_column(String(128), default="")
    blocked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AdminSetting(Base):
    """Install-wide values set by the CLI or the page: the password hash, the session secret."""

    __tablename__ = "admin_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AdminSession(Base):
    """A logged-in browser. The cookie holds a random token; only its keyed hash is stored,
    so logging out (deleting the row) ends the session even for a copied cookie."""

    __tablename__ = "admin_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # HMAC of the cookie's token
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


# --- characters (issue 17) ---


class CharacterRecord(Base):
    """A character usable in one chat (a group or a private chat) or, with ``chat`` empty,
    in every chat of a workspace. Names are unique per place, compared by ``name_key``
    (case-folded, NFKC): a column, so both databases enforce it without expression indexes."""

    __tablename__ = "characters"
    __table_args__ = (UniqueConstraint("platform", "workspace", "chat", "name_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    workspace: Mapped[str] = mapped_column(String(64))
    chat: Mapped[str] = mapped_column(String(128), default="")  # "" = the whole workspace
    scope: Mapped[str] = mapped_column(String(16))  # workspace, group, chat
    owner: Mapped[str] = mapped_column(String(128), default="")  # platform user id
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(64))
    card: Mapped[dict] = mapped_column(JSON)  # bot.characters.character.Character.to_dict()
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)  # what it adds to every prompt
    avatar: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # a small PNG, for export
    revision: Mapped[int] = mapped_column(Integer, default=1)  # bumped by every edit
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# --- long documents (issue 21) ---


class DocumentJob(Base):
    """The reading of a message's documents in parts: what was asked, the plan, the estimate,
    and where it stands. One per message (``request_seq``: the user message holding them).

    States: ``new``, ``asking`` (the estimate was shown, waiting for the go-ahead), ``running``,
    ``done``, ``cancelled``, ``refused`` (more than the quota left)."""

    __tablename__ = "document_jobs"
    __table_args__ = (UniqueConstraint("conversation_id", "request_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    request_seq: Mapped[int] = mapped_column(Integer)
    question: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16))
    plan: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # bot.longdocs.plan.Plan.to_dict()
    estimate_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    estimate_cost: Mapped[float] = mapped_column(Float, default=0.0)
    turn_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the turn working on it last
    progress: Mapped[list | None] = mapped_column(JSON, nullable=True)  # platform ids of the progress message
    approved_by: Mapped[str] = mapped_column(String(128), default="")
    resumes: Mapped[int] = mapped_column(Integer, default=0)  # restarts it was taken up again after
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DocumentResult(Base):
    """What a job has paid for so far, kept so nothing is paid twice (a restart, a follow-up,
    Regenerate): a part's notes (``kind`` "part", ``number`` the part) or a scanned page's
    transcription (``kind`` "page", ``number`` the page), of the job's ``document``-th file."""

    __tablename__ = "document_results"
    __table_args__ = (UniqueConstraint("job_id", "kind", "document", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("document_jobs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    document: Mapped[int] = mapped_column(Integer, default=0)
    number: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# --- brand profiles (issue 18) ---


class BrandRecord(Base):
    """A chat's brand profile: one per group, channel or private chat, shared by every thread
    and topic in it. ``profile`` is ``bot.compliance.brand.BrandProfile.to_dict()``; ``name``
    repeats its brand name for lists."""

    __tablename__ = "brands"
    __table_args__ = (UniqueConstraint("platform", "workspace", "chat"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    workspace: Mapped[str] = mapped_column(String(64))
    chat: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(128))
    profile: Mapped[dict] = mapped_column(JSON)
    revision: Mapped[int] = mapped_column(Integer, default=1)  # bumped by every change
    updated_by: Mapped[str] = mapped_column(String(160), default="")  # "platform:user id" or "admin page"
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ToolCallRecord(Base):
    """Every call of a tool from an MCP server (issue 19): who, where, what, how it ended.

    ``arguments`` holds the call's arguments with values that look like secrets replaced
    (``bot.mcp.redact``), cut to 2,000 characters. A call that needs an admin's approval is
    written first (its id is the approval's) and completed when it ends; ``decision`` is set
    once, by whichever process takes the click."""

    __tablename__ = "tool_calls"
    __table_args__ = (Index("ix_tool_calls_started_at", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    platform: Mapped[str] = mapped_column(String(32))
    workspace: Mapped[str] = mapped_column(String(64))
    chat: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[str] = mapped_column(String(128))
    conversation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    turn_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    server: Mapped[str] = mapped_column(String(64))
    tool: Mapped[str] = mapped_column(String(128))
    arguments: Mapped[str] = mapped_column(Text, default="")
    # running, ok, error, timeout, crashed, unavailable, denied, unanswered, no_admin, limit
    outcome: Mapped[str] = mapped_column(String(16), default="running")
    duration_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    decision: Mapped[str | None] = mapped_column(String(16), nullable=True)  # approved / denied
    decided_by: Mapped[str] = mapped_column(String(160), default="")


class ToolAccessRule(Base):
    """The admin page's choice of which chats may use an MCP server; beats the config file.

    Each field is a value or ``*``; ``chat`` may also be ``@groups`` or ``@private`` (every
    group, every private chat). The most specific matching rule decides."""

    __tablename__ = "tool_access_rules"
    __table_args__ = (UniqueConstraint("server", "platform", "workspace", "chat"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    server: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(32), default="*")
    workspace: Mapped[str] = mapped_column(String(64), default="*")
    chat: Mapped[str] = mapped_column(String(128), default="*")
    allowed: Mapped[bool] = mapped_column(Boolean)
    set_by: Mapped[str] = mapped_column(String(160), default="")
    set_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
