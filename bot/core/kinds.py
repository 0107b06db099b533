"""How kinds of turns and commands plug into the core.

The core answers plain messages itself (``TurnKind.CHAT``); other kinds (copywriting's
copy and refine turns) and their commands register with ``ChatService`` through the small
interfaces here, and work only through ``TurnContext`` and ``Core``: never through the
service's own members.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.config import Settings
from bot.core.pacing import AnswerWriter
from bot.core.turns import TurnRequest, TurnUsage
from bot.gateway.client import GatewayClient
from bot.platform.controls import Action, Row
from bot.platform.inbox import CommandInfo
from bot.platform.messages import IncomingMessage
from bot.platform.surface import ReplySurface
from bot.store.repo import ConversationRow, NewPart, Store, StoredMessage
from bot.usage.meter import MeteredGateway


class Core(Protocol):
    """What commands, kinds and control handlers may ask of the core (ChatService)."""

    settings: Settings
    store: Store

    @property
    def gateway(self) -> GatewayClient: ...

    async def notify(self, surface: ReplySurface, text: str) -> None:
        """A short message in the bot's own voice."""

    async def wait_turn(self, turn_id: int) -> None:
        """Return once ``turn_id`` is written and stored."""

    async def submit(self, msg: IncomingMessage, surface: ReplySurface,
                     request: TurnRequest | None = None) -> None:
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
    _status_sent: str = field(default="", repr=False)
    _status_task: asyncio.Task[None] | None = field(default=None, repr=False)

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
        """Return once the last status asked for is shown (the turn's end clears it)."""
        if self._status_task is not None:
            await asyncio.gather(self._status_task, return_exceptions=True)

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


@dataclass(frozen=True, slots=True)
class Command:
    info: CommandInfo
    handler: CommandHandler
    # Runs in arrival order, before later messages are stored: it changes what they mean
    # (/new starts a new thread, /style makes them briefs, /copy queues a turn).
    in_line: bool = False
# A click on a control of a kind the core does not handle itself (``Press.kind``); returns
# the acknowledgement text. The handler checks the press's arguments (None: not a press it
# wrote, answered as a stale control).
PressHandler = Callable[[Action, ReplySurface, Core], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class PromptAddition:
    """What a feature adds to one turn's prompt. Prompt caching matches the prefix byte for
    byte (system, then the first messages), so only stable text may go there."""

    system: str = ""  # appended to the system prompt: the same bytes every turn until edited
    examples: tuple[dict[str, Any], ...] = ()  # messages right after the system prompt (few-shot)
    newest: str = ""  # appended to the newest user message: this turn's volatile additions


class PromptHook(Protocol):
    async def __call__(self, conversation: ConversationRow, kind: str,
                       history: list[StoredMessage]) -> PromptAddition | None:
        """This feature's addition to a turn of ``kind`` in ``conversation`` (None: nothing)."""


@dataclass(frozen=True, slots=True)
class Extension:
    """What a package registers with the core in one go."""

    kinds: tuple[TurnKindHandler, ...] = ()
    commands: tuple[Command, ...] = ()
    presses: dict[str, PressHandler] = field(default_factory=dict)
    prompt: tuple[PromptHook, ...] = ()
