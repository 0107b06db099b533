"""What an adapter implements so the core can answer on its platform.

Modelled on vercel/chat: ``post`` / ``edit`` / ``set_status`` are required; native
streaming is an optional method that may decline (return ``None``), in which case the
core's own post-and-edit loop (``bot.core.pacing``) streams the answer instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, runtime_checkable


class RateLimited(Exception):
    """The platform answered 429. The adapter has already paused its shared budget."""

    def __init__(self, retry_after: float, detail: str = "") -> None:
        super().__init__(f"rate limited for {retry_after:.1f}s {detail}".strip())
        self.retry_after = retry_after


class StreamUnavailable(Exception):
    """A native stream was refused or expired; the core continues with post-and-edit."""


class WriteFailed(Exception):
    """A post or edit failed for a reason that retrying the same write will not fix."""


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
    """A message the bot wrote. ``id`` is the platform's id; ``extra`` is adapter state."""

    id: str
    extra: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class Write:
    """How a write should look.

    ``final`` writes carry Markdown to render; others are plain text (half-written
    Markdown must never reach a platform's parser). On the answer's ``last_page`` a final
    write carries the answer's buttons (Regenerate, feedback); a streaming write may carry
    a Stop control for ``turn_id``.
    """

    turn_id: int
    final: bool = False
    last_page: bool = True
    notice: bool = False  # an error or refusal, not a model answer: no buttons
    # With BOT_SHOW_REASONING, the model's reasoning for the answer's first page, to show
    # collapsed above it (Telegram: an expandable blockquote). Empty otherwise.
    reasoning: str = ""
    # A copywriting answer: how many numbered variants it shows, so the adapter can offer
    # one-tap refinements (``ChatService.refine(turn_id, number, action, surface)`` with
    # actions from ``bot.copywriting.refine.ACTIONS``). 0 for ordinary answers.
    variants: int = 0


@runtime_checkable
class NativeStream(Protocol):
    """A platform's own streaming (Slack chat.*Stream, Telegram drafts)."""

    limits: SurfaceLimits

    async def update(self, text: str) -> None:
        """Show ``text``: the full text of this stream so far (append-only)."""

    async def close(self, text: str, write: Write) -> MessageRef:
        """End the stream with ``text`` as its final, formatted content."""


@runtime_checkable
class ReplySurface(Protocol):
    """One place an answer is written: bound to a chat/thread and the message it answers."""

    limits: SurfaceLimits

    async def post(self, text: str, write: Write) -> MessageRef: ...

    async def edit(self, ref: MessageRef, text: str, write: Write) -> None: ...

    async def set_status(self, status: str) -> None:
        """Show a transient status ("thinking…", a tool's progress); "" clears it."""


async def open_native_stream(surface: ReplySurface, turn_id: int) -> NativeStream | None:
    """Ask the surface for a native stream; a surface without the optional method declines."""
    opener = getattr(surface, "open_stream", None)
    if opener is None:
        return None
    return await opener(turn_id)
