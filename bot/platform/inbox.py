"""The one door into the core: what an adapter hands in, and what the core gives back.

The core implements ``Inbox`` and gives each adapter its own (bound to the platform's
name and allowlist). An adapter acknowledges a platform event, then hands it in at once:

- a message: ``receive(arrival, build)``. The inbox takes the conversation's place in line
  before anything awaits (so messages are stored in the order they arrived), dedupes the
  delivery durably, decides access (allowlist, blocked users) *before* ``build`` runs, then
  runs ``build`` — which may download files, and returns the ``IncomingMessage``, a ``Notice``
  (only a word from the bot) or None (nothing to answer) — stores it and answers it. Commands
  enter the same way.
- a click on a control: ``click(click, surface, acknowledge)``;
- the bot joined or left a chat: ``membership(...)``.
Each returns the task it started; the core tracks every task (``spawn`` for an adapter's
own follow-up work), logs what fails, waits for them at shutdown within one grace
(``BOT_SHUTDOWN_GRACE``), and ``drain()`` returns once none is left.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from bot.platform.controls import Click
from bot.platform.messages import Author, ConversationKey, IncomingMessage
from bot.platform.surface import Ending, ReplySurface
from bot.ratelimits.counters import Counters


@dataclass(frozen=True, slots=True)
class Arrival:
    """An event as it reaches the inbox, before anything slow happens."""

    key: ConversationKey  # the conversation it belongs to (its place in line)
    event_id: str  # the platform's id of this delivery: a second delivery is dropped ("": none)
    sender: Author  # who wrote it (access is decided on this)
    surface: ReplySurface  # where answers, notices and refusals go
    addressed: bool = True  # the bot was asked (a refusal to chatter stays silent)


@dataclass(frozen=True, slots=True)
class Moved:
    """What ``build`` returns when the message is to be answered elsewhere than it arrived
    (Slack: a slash command answered in a thread under an anchor message the bot posted)."""

    message: IncomingMessage
    surface: ReplySurface


@dataclass(frozen=True, slots=True)
class Notice:
    """What ``build`` returns when the event gets only a word from the bot (a sticker, a file
    it cannot read): said when the event's turn in line comes, so notices and answers keep
    the order the events arrived in."""

    text: str


Build = Callable[[], Awaitable[IncomingMessage | Moved | Notice | None]]


@dataclass(frozen=True, slots=True)
class Ack:
    """What the clicker is told: a toast on Telegram; where a click shows nothing by itself
    (Slack), ``personal`` acknowledgements go to the clicker alone."""

    text: str
    personal: bool = False


Acknowledge = Callable[[Ack], Awaitable[None]]


class Membership(StrEnum):
    JOINED = "joined"  # added to a chat (or unblocked)
    LEFT = "left"  # removed, kicked, or blocked by the user: nothing more is sent there


@dataclass(frozen=True, slots=True)
class CommandInfo:
    """A command some part of the bot registered, for the platforms' command menus."""

    name: str  # "copy"
    summary: str  # "Write copy variants"
    usage: str = ""  # "<brief>"
    menu: bool = True  # offered in menus (Telegram's command list, Slack's manifest)
    # A label for running the command on a message someone picks, whose text becomes the
    # command's ``quoted`` input (Slack: a message shortcut, answered to the picker alone;
    # Feishu: the command sent as a reply, the replied-to message read back); "": not offered
    # on messages. For commands that answer with a notice (/check), not a streamed answer.
    on_message: str = ""


class Inbox(Protocol):
    """What the core offers one adapter."""

    @property
    def platform(self) -> str:
        """The adapter's name (``ConversationKey.platform``)."""

    @property
    def time_scale(self) -> float:
        """``PLATFORM_TIME_SCALE``: every rate window and pacing interval is multiplied by it."""

    @property
    def poll_interval(self) -> float:
        """How often to look again for work another process may have left (a lead to take)."""

    @property
    def commands(self) -> Sequence[CommandInfo]:
        """Every registered command, for the platform's command menu."""

    def unknown_command(self, name: str) -> str:
        """What to tell someone who used a command nobody registered (the closest known
        ones), for platforms that answer commands before they become messages."""

    async def complete(self, key: ConversationKey, command: str, args: str) -> list[str]:
        """Words that complete the last word of ``args`` typed after ``/command`` in
        ``key``'s conversation (style ids, character names): for a terminal's completion."""

    def receive(self, arrival: Arrival, build: Build) -> asyncio.Task[None]: ...

    def click(
        self, click: Click, surface: ReplySurface, acknowledge: Acknowledge | None = None, *, event_id: str = ""
    ) -> asyncio.Task[None]:
        """A click on a control; ``surface`` is where a new answer (Regenerate) goes;
        ``acknowledge`` tells the clicker (the core's ``Ack``)."""

    def membership(
        self, workspace: str, chat: str, change: Membership, *, event_id: str = ""
    ) -> asyncio.Task[None]: ...

    def spawn(self, work: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """An adapter's own follow-up work (a title, suggested prompts), tracked like events."""

    async def notify(self, surface: ReplySurface, text: str, *, ending: Ending | None = None, to: str = "") -> None:
        """A short message in the bot's own voice (a file it cannot read, a refusal);
        ``ending``: the message it answers ends here (refused, failed); ``to``: the one person
        it is meant for (``Write.audience``)."""

    async def known(self, key: ConversationKey) -> bool:
        """Whether the bot already has a conversation under ``key`` (joined a thread)."""

    async def record(self, message: IncomingMessage) -> None:
        """Store an earlier message as context now (what a thread said before the bot was
        called into it); call it from ``build``, while the new message's place is held."""

    async def lead(self, name: str) -> bool:
        """True when this process is the one that does ``name`` (e.g. long polling)."""

    def counters(self, account: str) -> Counters | None:
        """Where budgets for ``account`` (a token) are counted: shared by every process
        (Redis) when configured, else None (each process counts its own)."""

    def attach(self, surfaces: Surfaces) -> None:
        """The adapter is connected: answers waiting in its conversations can be written,
        and interrupted ones repaired."""

    async def drain(self) -> None:
        """Return once every event handed in has been handled and answered."""


class Surfaces(Protocol):
    """An adapter as the core sees it once connected: a way to write into a stored
    conversation (an answer another process or a restart left to this one)."""

    def surface_for(self, key: ConversationKey, *, reply_to: str = "", user: str = "") -> ReplySurface | None:
        """Where to answer in ``key``'s conversation (``reply_to``: the platform id of the
        message asked, ``user``: who asked); None when the conversation is not this
        adapter's (another bot, another workspace)."""
