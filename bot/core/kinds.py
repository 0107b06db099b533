"""How kinds of turns and commands plug into the core.

The core answers plain messages itself (``TurnKind.CHAT``); other kinds (copywriting's
copy and refine turns) and their commands register with ``ChatService`` through the small
interfaces here, and work only through ``TurnContext`` and ``Core``: never through the
service's own members.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.config import Settings
from bot.core.pacing import AnswerWriter
from bot.core.turns import TurnRequest, TurnUsage
from bot.gateway.client import GatewayClient
from bot.platform.controls import Action, Row
from bot.platform.inbox import Ack, CommandInfo
from bot.platform.messages import Attachment, ConversationKey, IncomingMessage
from bot.platform.surface import ReplySurface, Step, steps_line
from bot.store.repo import ConversationRow, NewPart, RecoveredAnswer, Store, StoredMessage
from bot.usage.meter import MeteredGateway
from bot.usage.operators import Operators


class Core(Protocol):
    """What commands, kinds and control handlers may ask of the core (ChatService)."""

    settings: Settings
    store: Store
    ops: Operators  # access (who is an admin), quotas, metering

    @property
    def gateway(self) -> GatewayClient: ...

    async def notify(self, surface: ReplySurface, text: str) -> None:
        """A short message in the bot's own voice."""

    async def wait_turn(self, turn_id: int) -> None:
        """Return once ``turn_id`` is written and stored."""

    async def submit(self, msg: IncomingMessage, surface: ReplySurface, request: TurnRequest | None = None) -> None:
        """Store ``msg`` as waiting for an answer (of ``request``'s kind) and queue it."""


@dataclass
class TurnContext:
    """One turn as a kind's producer sees it: the prompt, the model, the answer."""

    turn_id: int
    kind: str  # the kind's name (a TurnKind, or a kind a feature registered)
    extra: dict[str, Any]  # the request's options (TurnRequest.extra)
    conversation: ConversationRow
    messages: list[dict[str, Any]]  # the prompt, OpenAI-shaped; tool rounds append to it
    settings: Settings
    gateway: MeteredGateway  # the service's client, metered for this turn
    writer: AnswerWriter
    show_status: Callable[[str], Awaitable[None]]  # the surface's status line (cosmetic)
    produce_as: Callable[[str], Awaitable[None]]  # answer as another kind instead
    started: float = field(default_factory=time.monotonic)
    ttft: float | None = None  # seconds to the first visible text
    reasoning: list[str] = field(default_factory=list)  # kept as it streams: a stopped turn keeps it
    usage: TurnUsage = field(default_factory=TurnUsage)
    finish_reason: str | None = None
    parts: list[NewPart] = field(default_factory=list)  # stored with the answer (copy variants)
    # Controls the kind adds to the finished answer, above the core's Regenerate and feedback
    # (copywriting: each variant's refinements); shown only when the turn ends well.
    controls: list[Row] = field(default_factory=list)
    status_shown: str = ""  # the status asked for last
    asker: str = ""  # the author of the newest message the turn answers (tools are recorded under it)
    # The surface's tool-progress drawing (``ReplySurface.show_steps`` for this turn): True
    # when drawn, False to fall back to the status line.
    draw_steps: Callable[[Sequence[Step]], Awaitable[bool]] | None = None
    _status_sent: str = field(default="", repr=False)
    _status_task: asyncio.Task[None] | None = field(default=None, repr=False)
    _steps: dict[str, Step] = field(default_factory=dict, repr=False)  # every step of the turn, in order
    _steps_version: int = field(default=0, repr=False)
    _steps_task: asyncio.Task[None] | None = field(default=None, repr=False)
    _ended: bool = field(default=False, repr=False)

    async def status(self, text: str) -> None:
        """A transient status line ("thinking…", a tool's progress); "" clears it.

        Cosmetic: shown from a task of its own, so the answer's text never waits for it;
        statuses asked for while one is being shown collapse into the latest."""
        if text == self.status_shown:
            return
        self.status_shown = text
        if self._status_task is None or self._status_task.done():
            self._status_task = asyncio.create_task(self._show_statuses(text), name=f"status-{self.turn_id}")

    async def _show_statuses(self, text: str) -> None:
        while True:
            await self.show_status(text)
            self._status_sent = text
            if text == self.status_shown:
                return
            text = self.status_shown

    async def status_settled(self) -> None:
        """Return once the last status and steps asked for are shown (the turn's end clears it)."""
        if self._steps_task is not None:
            await asyncio.gather(self._steps_task, return_exceptions=True)
        if self._status_task is not None:
            await asyncio.gather(self._status_task, return_exceptions=True)

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(self._steps.values())

    async def show_steps(self, steps: Sequence[Step]) -> None:
        """Tool calls as they start, wait, end or fail: drawn by the surface where it can
        (``ReplySurface.show_steps``), else as the status line. Cosmetic, like ``status``:
        drawn from a task of its own with the newest state; never awaited by answer text."""
        if self._ended:
            return
        for step in steps:
            self._steps[step.id] = step
        self._steps_version += 1
        if self._steps_task is None or self._steps_task.done():
            self._steps_task = asyncio.create_task(self._draw_steps(), name=f"steps-{self.turn_id}")

    async def _draw_steps(self) -> None:
        while not self._ended:
            version, steps = self._steps_version, self.steps
            drawn = False
            if self.draw_steps is not None:
                drawn = await self.draw_steps(steps)
            if not drawn and not self._ended:
                await self.status(steps_line(steps))
            if version == self._steps_version:
                return

    def end_steps(self) -> None:
        """The answer is being finished: no step is drawn from now on (a late one would
        outlive the answer, as a stray status or message)."""
        self._ended = True

    def first_text(self) -> None:
        if self.ttft is None:
            self.ttft = time.monotonic() - self.started

    def feed(self, text: str) -> None:
        """Visible answer text, streamed to the user as it comes."""
        self.first_text()
        self.writer.feed(text)


class TurnKindHandler(Protocol):
    @property
    def kind(self) -> str:
        """Stored in turns.kind (a plain class attribute satisfies it)."""

    def takes_plain_messages(self, conversation: ConversationRow) -> bool:
        """True when a plain message in this conversation asks for this kind (a style is set)."""

    def system_addition(self, conversation: ConversationRow) -> str:
        """Text appended to the system prompt of every turn in this conversation ("" for none)."""

    async def produce(self, turn: TurnContext) -> None:
        """Call the model and feed the answer into ``turn``."""


@dataclass(frozen=True, slots=True)
class CommandCall:
    name: str  # "copy"
    args: str  # what follows the command
    msg: IncomingMessage
    surface: ReplySurface
    core: Core


CommandHandler = Callable[[CommandCall], Awaitable[None]]
# The words that may stand at the next place of a command's arguments, given the
# conversation and the words already typed before it (styles' ids, characters' names):
# terminals complete them as the user types. The core filters them by what is typed.
ArgumentCompleter = Callable[[ConversationKey, list[str]], Awaitable[Sequence[str]]]


@dataclass(frozen=True, slots=True)
class Command:
    info: CommandInfo
    handler: CommandHandler
    # Runs in arrival order, before later messages are stored: it changes what they mean
    # (/new starts a new thread, /style makes them briefs, /copy queues a turn).
    in_line: bool = False
    complete: ArgumentCompleter | None = None  # its arguments' words, for completion


# A click on a control of a kind the core does not handle itself (``Press.kind``); returns
# the acknowledgement text (or an ``Ack``, to make it ``personal``: for the clicker alone).
# The handler checks the press's arguments (None: not a press it wrote, answered as a stale
# control).
PressHandler = Callable[[Action, ReplySurface, Core], Awaitable[str | Ack | None]]


@dataclass(frozen=True, slots=True)
class PromptAddition:
    """What a feature adds to one turn's prompt. Prompt caching matches the prefix byte for
    byte (system, then the first messages), so only stable text may go there."""

    system: str = ""  # appended to the system prompt: the same bytes every turn until edited
    examples: tuple[dict[str, Any], ...] = ()  # messages right after the system prompt (few-shot)
    newest: str = ""  # appended to the newest user message: this turn's volatile additions


class PromptHook(Protocol):
    async def __call__(
        self, conversation: ConversationRow, kind: str, history: list[StoredMessage]
    ) -> PromptAddition | None:
        """This feature's addition to a turn of ``kind`` in ``conversation`` (None: nothing)."""


class RecoveryHook(Protocol):
    async def __call__(self, recovered: list[RecoveredAnswer], core: Core) -> None:
        """A start or a sweep just finalised the turns a stopped process left streaming
        (``recovered``, maybe none): take up the work they were doing (a reading in parts
        queues its question again and goes on where it was)."""


@dataclass(frozen=True, slots=True)
class AttachmentCall:
    """A file sent to the bot, offered to a feature before the core stores it."""

    msg: IncomingMessage
    attachment: Attachment
    surface: ReplySurface
    core: Core


# True: the feature took the file (it answers about it itself); the core neither stores it
# as an image or a document nor sends it to the model. Runs in arrival order, like an in-line
# command: what it stores precedes the chat's later messages.
AttachmentHook = Callable[[AttachmentCall], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Addressed:
    """A group message a feature says is for the bot although the platform did not address
    it (a character called by name), and how to answer it."""

    request: TurnRequest | None = None  # None: as any addressed message


# Asked about every group message that is not a command, before it is stored; the first
# feature to answer decides.
AddressHook = Callable[[IncomingMessage], Awaitable[Addressed | None]]


@dataclass(frozen=True, slots=True)
class Extension:
    """What a package registers with the core in one go."""

    kinds: tuple[TurnKindHandler, ...] = ()
    commands: tuple[Command, ...] = ()
    presses: dict[str, PressHandler] = field(default_factory=dict)
    prompt: tuple[PromptHook, ...] = ()
    recovered: tuple[RecoveryHook, ...] = ()
    attachments: tuple[AttachmentHook, ...] = ()
    addressing: tuple[AddressHook, ...] = ()
