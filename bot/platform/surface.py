"""What an adapter implements so the core can answer on its platform.

Modelled on vercel/chat: ``post`` / ``edit`` / ``set_status`` are required. Optional
abilities are declared here with a default that declines: ``open_stream`` (a platform's
native streaming: Slack streams, Telegram drafts) returns None unless the surface has
one, and the core's own post-and-edit loop (``bot.core.pacing``) streams instead.
Surfaces subclass ``ReplySurface`` so they inherit those defaults.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from bot.platform.controls import Controls
from bot.ratelimits.errors import RateLimited as RateLimited  # surfaces raise it: re-exported for them


class StreamUnavailable(Exception):
    """A native stream was refused or expired; the core continues with post-and-edit."""


class WriteFailed(Exception):
    """A post or edit failed for a reason that retrying the same write will not fix."""


class SurfaceGone(WriteFailed):
    """The place no longer takes the bot's messages (removed from the group, blocked by the
    user, archived channel): nothing more is written there for this answer."""


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units (Telegram counts limits and offsets this way)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True, slots=True)
class SurfaceLimits:
    max_chars: int  # per message, in ``measure`` units
    edit_interval: float = 1.0  # minimum seconds between two writes to one message
    measure: Callable[[str], int] = len
    max_age: float | None = None  # a native stream is closed before it gets this old


@dataclass(frozen=True, slots=True)
class MessageRef:
    """What the bot wrote for one page of an answer: the platform's message id, and the
    ids of any messages the platform needed besides it (rendering can make a page longer
    than one message allows)."""

    id: str
    more: tuple[str, ...] = ()

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.id, *self.more)


@dataclass(frozen=True, slots=True)
class Write:
    """How a write should look.

    ``final`` writes carry Markdown to render; others are plain text (half-written
    Markdown must never reach a platform's parser). ``controls`` are what the core chose
    to show with this write (Stop while streaming; refinements, Regenerate and feedback on
    a finished answer's last page); adapters draw them.
    """

    turn_id: int
    final: bool = False
    notice: bool = False  # an error or refusal in the bot's voice, not a model answer
    # With BOT_SHOW_REASONING, the model's reasoning for the answer's first page, to show
    # collapsed above it (Telegram: an expandable blockquote). Empty otherwise.
    reasoning: str = ""
    controls: Controls = field(default=())


class NativeStream(Protocol):
    """A platform's own streaming (Slack chat.*Stream, Telegram drafts)."""

    limits: SurfaceLimits

    @property
    def ref(self) -> MessageRef | None:
        """The message the stream is writing, once the platform made one (drafts never do)."""

    async def update(self, text: str) -> None:
        """Show ``text``: the full text of this stream so far (append-only)."""

    async def close(self, text: str, write: Write) -> MessageRef:
        """End the stream with ``text`` as its final, formatted content."""


class ReplySurface(Protocol):
    """One place an answer is written: bound to a chat/thread and the message it answers."""

    limits: SurfaceLimits

    async def post(self, text: str, write: Write) -> MessageRef: ...

    async def edit(self, ref: MessageRef, text: str, write: Write) -> MessageRef:
        """Rewrite ``ref``'s messages; returns the ref, with any pages added or dropped."""

    async def set_status(self, status: str) -> None:
        """Show a transient status ("thinking…", a tool's progress); "" clears it."""

    async def open_stream(self, turn_id: int) -> NativeStream | None:
        """A native stream for one page of an answer, or None to use post-and-edit."""
        return None
