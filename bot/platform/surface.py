"""What an adapter implements so the core can answer on its platform.

Modelled on vercel/chat: ``post`` / ``edit`` / ``set_status`` are required. Optional
abilities are declared here with a default that declines: ``open_stream`` (a platform's
native streaming: Slack streams, Telegram drafts) returns None unless the surface has
one, and the core's own post-and-edit loop (``bot.core.pacing``) streams instead;
``send_file`` (an exported card) returns None unless the surface can post a file, and
the caller shows the content as text instead. ``show_steps`` (tool calls shown while they
run) declines too: the core then puts ``steps_line(steps)`` on the status line instead.
Surfaces subclass ``ReplySurface`` so they inherit those defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol

from bot.platform.controls import Controls
from bot.ratelimits.rate_limited import RateLimited as RateLimited  # surfaces raise it: re-exported for them


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


class Ending(StrEnum):
    """How an exchange ended, carried by the write that ends it (a turn's final write, or
    the notice that refuses or rejects a message), for surfaces that report it: the
    terminal's exit status. Other writes carry None."""

    ANSWERED = "answered"  # the model's answer was written in full
    STOPPED = "stopped"  # the user stopped it
    FAILED = "failed"  # no whole answer: the gateway or the bot failed, or an unknown command
    REFUSED = "refused"  # not answered on purpose: a quota was reached, the user is not allowed


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
    ending: Ending | None = None  # on the write that ends an exchange: how it ended
    # The one person a notice is meant for (a refusal, a reached quota, a personal command
    # reply), by platform user id. A surface that can show a message to one person alone in
    # a shared chat does (Telegram's ephemeral messages, Slack's chat.postEphemeral); the rest,
    # and private chats, post it as usual. "": everyone in the conversation.
    audience: str = ""


StepState = Literal["pending", "running", "done", "error"]
_STEP_MARK: dict[str, str] = {"pending": "⏸", "running": "⏳", "done": "✓", "error": "✗"}


@dataclass(frozen=True, slots=True)
class Step:
    """One thing the bot does on the way to an answer (a tool call), as users see it.

    ``id`` is stable for the step's life (the tool call's id); ``title`` names it for people
    ("cms · search"); ``state`` moves pending (waiting, e.g. for an admin's approval) →
    running → done | error; ``detail`` is one short line (why it waits, how it failed,
    how long it took). Steps are cosmetic: a surface may drop any update but the last."""

    id: str
    title: str
    state: StepState
    detail: str = ""

    @property
    def finished(self) -> bool:
        return self.state in ("done", "error")

    @property
    def mark(self) -> str:
        return _STEP_MARK[self.state]


def steps_line(steps: Sequence[Step], *, limit: int = 3) -> str:
    """The steps as one status line: "🔧 cms · search ✓ · drive · find ⏳ (1/2 done)".
    Failed steps say so; at most ``limit`` steps are named (the latest), the rest counted."""
    if not steps:
        return ""
    shown = list(steps)[-limit:]
    parts = []
    for step in shown:
        part = f"{step.title} {step.mark}"
        if step.state == "error" and step.detail:
            part += f" ({step.detail[:60]})"
        elif step.state == "pending" and step.detail:
            part += f" ({step.detail[:60]})"
        parts.append(part)
    line = "🔧 " + " · ".join(parts)
    done = sum(1 for s in steps if s.finished)
    if len(steps) > 1:
        line += f" ({done}/{len(steps)} done)"
    return line


class NativeStream(Protocol):
    """A platform's own streaming (Slack chat.*Stream, Telegram drafts)."""

    limits: SurfaceLimits

    @property
    def ref(self) -> MessageRef | None:
        """The message the stream is writing, once the platform made one (drafts never do)."""

    async def update(self, text: str, write: Write) -> None:
        """Show ``text``: the full text of this stream so far (append-only). ``write`` is how
        the core wants it shown (its controls: Stop while the answer streams)."""

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

    async def send_file(self, name: str, data: bytes, mime: str, caption: str = "") -> MessageRef | None:
        """Post ``data`` as a file called ``name`` with a short plain-text ``caption``; None
        when this surface can't post files (the caller falls back to text)."""
        return None

    async def show_steps(self, turn_id: int, steps: Sequence[Step]) -> bool:
        """Show the tool calls of answer ``turn_id`` so far (every step of the turn, in
        order, each in its latest state); True when the platform drew them, False to have
        the core put ``steps_line(steps)`` on the status line instead (the default).

        Optional and cosmetic: called from a task of its own with the newest steps only
        (updates in between collapse); it must never hold up or take the budget of answer
        text (use the cosmetic priority, drop what has no room: the next call repeats the
        whole state). Slack draws task_update chunks in the answer's native stream, Telegram
        a line under the draft or message, the terminal a line per change; a card platform
        would draw one element per step."""
        return False
