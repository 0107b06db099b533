"""The schema. Messages are made of ordered parts; a turn (one answer: model, options,
tokens, timings) is kept apart from the message content, as simonw/llm does."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, MetaData,
    String, Text, UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Attachment(Base):
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
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class InboundEvent(Base):
    __tablename__ = "inbound_events"
    __table_args__ = (UniqueConstraint("platform", "event_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
