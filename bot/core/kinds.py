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
from bot.core.turns import TurnKind, TurnRequest, TurnUsage
from bot.gateway.client import GatewayClient
from bot.platform.controls import Action, ControlKind
from bot.platform.messages import IncomingMessage
from bot.platform.surface import ReplySurface
from bot.store.repo import ConversationRow, NewPart, Store
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
    kind: TurnKind
    extra: dict[str, Any]  # the request's options (TurnRequest.extra)
    conversation: ConversationRow
    messages: list[dict[str, Any]]  # the prompt, OpenAI-shaped; tool rounds append to it
    settings: Settings
    gateway: MeteredGateway  # the service's client, metered for this turn
    writer: AnswerWriter
    show_status: Callable[[str], Awaitable[None]]  # the surface's status line (cosmetic)
    produce_as: Callable[[TurnKind], Awaitable[None]]  # answer as another kind instead
    started: float = field(default_factory=time.monotonic)
    ttft: float | None = None  # seconds to the first visible text
    reasoning: list[str] = field(default_factory=list)  # kept as it streams: a stopped turn keeps it
    usage: TurnUsage = field(default_factory=TurnUsage)
    finish_reason: str | None = None
    parts: list[NewPart] = field(default_factory=list)  # stored with the answer (copy variants)
    variants: int = 0  # numbered copy variants shown: each gets its refinement controls
    status_shown: str = ""  # the status asked for last
    _status_sent: str = field(default="", repr=False)
    _status_task: asyncio.Task | None = field(default=None, repr=False)

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
    kind: TurnKind

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
# A click on a control the core does not handle itself; returns the acknowledgement text.
PressHandler = Callable[[Action, ReplySurface, Core], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Extension:
    """What a package registers with the core in one go."""

    kinds: tuple[TurnKindHandler, ...] = ()
    commands: dict[str, CommandHandler] = field(default_factory=dict)
    presses: dict[ControlKind, PressHandler] = field(default_factory=dict)
