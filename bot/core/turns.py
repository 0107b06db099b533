"""What a turn is: one answer of the bot, from the request to the stored result.

Shared by the store and the core, so both speak of states and kinds in one typed
vocabulary. The values are the strings stored in ``turns.status`` and ``turns.kind``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from bot.platform.messages import ConversationKey


class TurnState(StrEnum):
    QUEUED = "queued"  # asked for, waiting for the conversation's previous answer
    STREAMING = "streaming"
    DONE = "complete"
    STOPPED = "stopped"  # the user pressed Stop
    FAILED = "error"  # the gateway or the bot failed; the user was told
    INTERRUPTED = "interrupted"  # cut off: a broken stream, or the process stopped mid-answer


# A message's status: a user message waits ("pending"), is answered, refused (a quota was
# reached) or is only context;
# an answer carries its turn's state (TurnState values) until a regeneration supersedes it.
MessageStatus = Literal[
    "pending",
    "answered",
    "context",
    "refused",
    "streaming",
    "complete",
    "stopped",
    "error",
    "interrupted",
    "superseded",
]
Role = Literal["user", "assistant", "tool"]


class TurnKind(StrEnum):
    """The core's own kind of turn. Features register kinds of their own (copywriting:
    "copy", "refine"): a turn's kind is a string, stored in ``turns.kind``."""

    CHAT = "chat"


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """What a waiting user message asks for, when it is more than a plain chat message.

    Stored with the message (``messages.request``) so the conversation's queue is the
    stored messages themselves; ``extra`` is JSON (a kind's own options)."""

    kind: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "extra": self.extra}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> TurnRequest | None:
        if not data:
            return None
        return cls(str(data["kind"]), dict(data.get("extra") or {}))


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """A stored turn, as the controls need it (regenerate, feedback, refinements)."""

    id: int
    conversation_id: int
    key: ConversationKey
    request_seq: int
    response_message_id: int | None
    kind: str
    state: TurnState
    request: TurnRequest | None
    feedback: int | None
    pages: tuple[str, ...]


@dataclass(slots=True)
class TurnUsage:
    """Tokens of every gateway call a turn made, added up."""

    prompt_tokens: int = 0  # the last call's prompt (each call re-sends the conversation)
    completion_tokens: int = 0
    cached_tokens: int = 0
    calls: int = 0

    def add(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> None:
        self.prompt_tokens = prompt_tokens
        self.completion_tokens += completion_tokens
        self.cached_tokens = cached_tokens
        self.calls += 1
