"""The conversation core: the owner of every turn. Adapters reach it through their
``Inbox`` (``bot.core.intake``), never directly.

A message is stored first, in arrival order (``bot.core.order``); a conversation's worker
then answers its waiting messages one turn at a time, in sequence order (plain messages
that waited together are answered together; a /copy, a refinement or a regeneration is a
turn of its own). The core tracks which turn streams in each conversation, routes every
control click (``act``), and repairs the platform messages of answers a dead process left
behind, through the platform's own surfaces (``attach``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from bot.config import Settings
from bot.core import texts
from bot.core.bursts import Bursts, Slot, Stored
from bot.core.chat import ChatKind
from bot.core.commands import Commands, looks_like_command, parse_command
from bot.core.kinds import (
    AddressHook,
    AttachmentCall,
    AttachmentHook,
    Command,
    CommandCall,
    Extension,
    PressHandler,
    PromptHook,
    RecoveryHook,
    TurnKindHandler,
)
from bot.core.order import ArrivalOrder, Ticket
from bot.core.outcome import StopReason
from bot.core.pacing import AnswerWriter
from bot.core.prompt import build_prompt, cost_of, images_wanted, with_additions
from bot.core.repair import repair
from bot.core.runner import ActiveTurn, TurnPlan, TurnRunner
from bot.core.tokens import estimate_tokens
from bot.core.turns import TurnKind, TurnRequest, TurnState
from bot.documents.incoming import READ_IN_PARTS, take_in
from bot.gateway.client import GatewayClient
from bot.images import ImageRejected, prepare_image
from bot.platform.base import ADMITTED, Admission
from bot.platform.controls import Action, Click, ControlKind, Press
from bot.platform.inbox import Ack, CommandInfo, Surfaces
from bot.platform.messages import ConversationKey, IncomingMessage
from bot.platform.surface import Ending, ReplySurface
from bot.process import logformat
from bot.store.coordinator import LocalCoordinator, PgCoordinator
from bot.store.repo import ConversationRow, NewPart, PendingMessage, RecoveredAnswer, Store
from bot.tools.registry import ToolRegistry
from bot.usage.access import Decision
from bot.usage.operators import Operators

log = logging.getLogger(__name__)
CONTEXT_COPIES_KEPT = 1024  # recent thread-context records whose own event may follow
SHUTDOWN_FINISH = 10.0  # seconds interrupted answers get for their final write and save

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant in a team chat. Answer in the language the user writes in. "
    "Use Markdown for structure when it helps. In group conversations each user message "
    "starts with the sender's name in brackets; address people by name when useful."
)


class ChatService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        gateway: GatewayClient,
        *,
        tools: ToolRegistry | None = None,
        coordinator: LocalCoordinator | PgCoordinator | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self._gateway = gateway
        self.coordinator = coordinator or LocalCoordinator()
        self.coordinator.on_stop = self._stop_here
        self.ops = Operators.from_settings(settings, store.db)  # access, quotas, metering
        self.kinds: dict[str, TurnKindHandler] = {TurnKind.CHAT: ChatKind(store, tools)}
        self.presses: dict[str, PressHandler] = {}
        self.prompt_hooks: list[PromptHook] = []  # features' additions to every turn's prompt
        self.recovery_hooks: list[RecoveryHook] = []  # features taking up a stopped process's work
        self.attachment_hooks: list[AttachmentHook] = []  # features that take a file before it is stored
        self.address_hooks: list[AddressHook] = []  # features that say a group message is for the bot
        self.commands = Commands()
        for command in (
            Command(CommandInfo("start", "What this bot does"), self._help),
            Command(CommandInfo("help", "Commands and tips"), self._help),
            Command(CommandInfo("new", "Start a fresh conversation here"), self._new, in_line=True),
            Command(CommandInfo("usage", "Tokens and cost used", "[all]"), self._usage),
            Command(CommandInfo("stop", "Stop the answer being written"), self._stop_command),
        ):
            self.commands.register(command)
        self._order = ArrivalOrder()
        self._reply_order = ArrivalOrder()  # replies outside the worker, in arrival order
        self._workers: dict[int, asyncio.Task[None]] = {}  # conversation id → its worker
        self._wakeups: dict[int, int] = {}  # bumped whenever a conversation gets a message
        self._active: dict[int, ActiveTurn] = {}  # conversation id → the turn it streams
        self._surfaces: dict[tuple[int, int], ReplySurface] = {}  # (conversation, seq) → where it was asked
        self._latest: dict[ConversationKey, int] = {}  # a key's current conversation id
        # Messages recorded as thread context whose own event may still come (``record``).
        self._context_copies: OrderedDict[tuple[ConversationKey, str], None] = OrderedDict()
        self._platforms: dict[str, Surfaces] = {}
        self._recovered: list[RecoveredAnswer] = []
        self._background: set[asyncio.Task[Any]] = set()  # the core's own: repairs, the sweep's answers
        self._intake: set[asyncio.Task[Any]] = set()  # every event an adapter handed in, until handled
        self._sweeper: asyncio.Task[None] | None = None  # several processes: the periodic sweep
        self._closing = False  # shutting down: no new turns start in this process
        self.bursts = Bursts(settings.burst_window)
        self._held: dict[tuple[int, int], Slot] = {}  # (conversation, seq) of a files-only message → its slot
        self._answering: dict[int, _Answering] = {}  # conversation id → the batch its worker answers
        self._joining: dict[int, asyncio.Event] = {}  # conversation id → a burst joining a stored message
        self._holding: set[int] = set()  # conversations whose worker here waits for a burst's follower

    @property
    def gateway(self) -> GatewayClient:
        return self._gateway

    @property
    def tools(self) -> ToolRegistry | None:
        """The tool registry chat turns offer the model (None when tools are off)."""
        chat = self.kinds[TurnKind.CHAT]
        assert isinstance(chat, ChatKind)
        return chat.tools

    def extend(self, extension: Extension) -> None:
        """Register a package's kinds of turns, commands and control handlers."""
        for handler in extension.kinds:
            self.kinds[handler.kind] = handler
        for command in extension.commands:
            self.commands.register(command)
        self.presses.update(extension.presses)
        self.prompt_hooks.extend(extension.prompt)
        self.recovery_hooks.extend(extension.recovered)
        self.attachment_hooks.extend(extension.attachments)
        self.address_hooks.extend(extension.addressing)

    # --- lifecycle ---
    async def start(self) -> None:
        """Finalise turns a dead process left streaming; their messages are repaired when
        their platform attaches."""
        await self.store.db.hold_liveness_lock()
        # Platforms retry an event within minutes; a week of ids is ample for dedupe and
        # keeps the table from growing for ever.
        await self.store.prune_events()
        await self.coordinator.start()
        self._recovered = await self.store.recover_streaming(texts.RESTART_MARKER)
        if self._recovered:
            log.warning("finalised %d answer(s) interrupted by a restart", len(self._recovered))
        await self._take_up(self._recovered)
        if self.coordinator.distributed:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="sweep")

    @property
    def interrupted(self) -> list[RecoveredAnswer]:
        """Answers a dead process left behind whose platform has not attached yet."""
        return list(self._recovered)

    def attach(self, name: str, platform: Surfaces) -> None:
        """A platform is ready: answers can be written there, and interrupted ones repaired."""
        self._platforms[name] = platform
        mine = [r for r in self._recovered if r.key.platform == name]
        self._recovered = [r for r in self._recovered if r.key.platform != name]
        if mine:
            self._spawn(self._repair(platform, mine))
        self._spawn(self._answer_waiting())  # messages a stopped process stored but never answered

    async def lead(self, name: str) -> bool:
        """True when this process is the one that does ``name`` (e.g. Telegram polling)."""
        return await self.coordinator.lead(name)

    async def close(self) -> None:
        """Cancel what still runs (``shutdown`` lets answers finish before this)."""
        tasks = [*self._workers.values(), *self._background, *self._intake, *filter(None, [self._sweeper])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.coordinator.close()

    # --- several processes: a dead one's answers are finalised and its queue answered ---
    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval)
            try:
                await self._sweep()
            except Exception:
                log.exception("sweep failed")

    async def _sweep(self) -> None:
        recovered = await self.store.recover_streaming(texts.RESTART_MARKER)
        if recovered:
            log.warning("finalised %d answer(s) a stopped process left", len(recovered))
        await self._take_up(recovered)
        for name, platform in self._platforms.items():
            theirs = [r for r in recovered if r.key.platform == name]
            if theirs:
                await self._repair(platform, theirs)
        self._recovered.extend(r for r in recovered if r.key.platform not in self._platforms)
        await self._answer_waiting()

    async def _take_up(self, recovered: list[RecoveredAnswer]) -> None:
        """Features take up the work of turns a stopped process left (before the waiting
        conversations are answered, so what they queue again is answered with them)."""
        for hook in self.recovery_hooks:
            try:
                await hook(recovered, self)
            except Exception:
                log.exception("taking up the work of interrupted turns failed")

    async def _answer_waiting(self) -> None:
        for conversation_id in await self.store.waiting_conversations(list(self._platforms)):
            if conversation_id not in self._workers:
                self._kick(conversation_id)

    async def shutdown(self, grace: float) -> None:
        """Start no new turn; let running answers finish within ``grace`` seconds; end the
        rest as interrupted (marker written, stored); then ``close``. Messages still
        waiting stay pending in the database for another process."""
        self._closing = True
        # Events handed in wait for their conversation's answer: they end with the workers.
        if busy := {*self._workers.values(), *self._intake}:
            await asyncio.wait(busy, timeout=grace)
        for active in list(self._active.values()):
            active.interrupt()
        if busy := {*self._workers.values(), *self._intake}:  # their final writes and saves
            await asyncio.wait(busy, timeout=SHUTDOWN_FINISH)
        await self.close()

    @property
    def queue_depth(self) -> int:
        """Messages queued in this process whose answer has not started."""
        return len(self._surfaces)

    @property
    def active_streams(self) -> int:
        return len(self._active)

    async def drain(self) -> None:
        """Return once every event handed in was handled and no conversation has work left."""
        while busy := [*self._intake, *self._workers.values(), *self._background]:
            await asyncio.gather(*busy, return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def track(self, work: Any, *, name: str) -> asyncio.Task[Any]:
        """Run an adapter's event (or follow-up work) as a task the core waits for at
        shutdown and in ``drain``; what fails is logged, never lost silently."""
        task = asyncio.create_task(work, name=name)
        self._intake.add(task)
        task.add_done_callback(self._intake_done)
        return task

    def _intake_done(self, task: asyncio.Task[Any]) -> None:
        self._intake.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("%s failed", task.get_name(), exc_info=exc)

    async def _repair(self, platform: Surfaces, answers: list[RecoveredAnswer]) -> None:
        for answer in answers:
            surface = platform.surface_for(answer.key)
            conv = await self.store.conversation(answer.key, create=False)
            if surface is None or (conv is not None and conv.left):
                continue  # another bot's or workspace's conversation, or a chat we were removed from
            try:
                await repair(surface, answer)
            except Exception:
                log.exception("could not repair interrupted answer of turn %s", answer.turn_id)

    # --- messages ---
    @property
    def system_prompt(self) -> str:
        return self.settings.system_prompt or DEFAULT_SYSTEM_PROMPT

    async def claim_event(self, platform: str, event_id: str) -> bool:
        return await self.store.claim_event(platform, event_id)

    async def has_conversation(self, key: ConversationKey) -> bool:
        return await self.store.conversation(key, create=False) is not None

    def arrive(self, key: ConversationKey) -> Ticket:
        """A message for ``key`` arrived: its place in line, taken before anything slow."""
        return self._order.ticket(key)

    def arrive_burst(self, key: ConversationKey, author: str) -> Slot | None:
        """A message for ``key`` from ``author`` arrived: its place in a burst (taken before
        any await, like the ticket); None when bursts are off."""
        return self.bursts.arrive(key, author) if self.settings.burst_window > 0 else None

    async def decide(
        self, key: ConversationKey, user_id: str, *, addressed: bool = True, admission: Admission = ADMITTED
    ) -> Decision:
        """Admins, the platform's allowlist (``admission``) and blocked users."""
        return await self.ops.access.decide(
            key.platform, key.workspace, key.chat, user_id, addressed=addressed, admission=admission
        )

    async def handle(self, msg: IncomingMessage, surface: ReplySurface) -> None:
        """Decide access, then take ``msg`` in (the path of core tests and ``bot chat``'s
        one-shot runs; adapters go through their inbox, which decides before downloading)."""
        ticket = self.arrive(msg.key)
        burst = self.arrive_burst(msg.key, msg.author.id)
        decision = await self.decide(msg.key, msg.author.id, addressed=msg.addressed)
        if not decision.allowed:
            if burst is not None:
                burst.settle()
            ticket.drop()
            if decision.text:
                await self.notify(surface, decision.text, to=msg.author.id)
            return
        await self.take_in(msg, surface, ticket, burst)

    async def take_in(
        self, msg: IncomingMessage, surface: ReplySurface, ticket: Ticket, burst: Slot | None = None
    ) -> None:
        """Store ``msg`` in arrival order (its ``ticket``) and, when it is addressed to the
        bot, answer it. Returns once the conversation has nothing left to answer. ``burst``:
        its place in a burst (the same author's file and text answered as one turn)."""
        try:
            accepted = await ticket.turn(lambda: self._accept(msg, surface, burst))
        finally:
            if burst is not None:
                burst.settle()  # not stored (a command, a feature took it): nobody joins it
        # Replies that do not wait for the worker (a command's, a notice) go out in the order
        # their messages arrived too: the place is taken before any await.
        reply = self._reply_order.ticket(msg.key)
        if accepted.unknown:
            text = self.commands.unknown_text(accepted.unknown)
            await reply.turn(lambda: self.notify(surface, text, ending=Ending.FAILED, to=msg.author.id))
        elif accepted.command is not None:
            call = CommandCall(*accepted.command, msg, surface, self)
            await reply.turn(lambda: self.commands.run(call))
        elif accepted.stored is not None and msg.addressed:
            conv, seq, notices = accepted.stored

            async def tell() -> None:
                for notice in notices:
                    await self.notify(surface, notice)

            await reply.turn(tell)
            if accepted.joined:
                self._kick(conv.id)
            else:
                self._queue(conv, seq, surface)
        else:
            reply.drop()
            if not accepted.ran:
                return  # context for later turns: nothing to wait for
        if not accepted.busy:
            await self._settled(msg.key)

    async def say_in_line(self, key: ConversationKey, ticket: Ticket, surface: ReplySurface, text: str) -> None:
        """A notice for an event that stores nothing, said in the order the events arrived."""

        async def nothing() -> None:
            return None

        await ticket.turn(nothing)
        reply = self._reply_order.ticket(key)
        await reply.turn(lambda: self.notify(surface, text))

    async def _accept(self, msg: IncomingMessage, surface: ReplySurface, burst: Slot | None = None) -> _Accepted:
        """What must happen in arrival order: storing the message, or running a command
        that changes what later messages mean."""
        # Answered by this call when no answer runs in the conversation; otherwise the
        # running worker takes the message after its turn, and ``handle`` returns at once.
        busy = self._latest.get(msg.key, -1) in self._workers
        name, args = parse_command(msg.text.strip())
        if name and self.commands.knows(name):
            if self.commands.get(name).in_line:
                await self.commands.run(CommandCall(name, args, msg, surface, self))
                return _Accepted(busy, ran=True)
            return _Accepted(busy, command=(name, args))  # run once the line moves on
        if name and msg.addressed and looks_like_command(name) and not msg.attachments:
            return _Accepted(busy, unknown=name)  # a typo is not a question for the model
        claimed = bool(msg.addressed and msg.attachments and self.attachment_hooks) and await self._claim(msg, surface)
        if claimed and not msg.text.strip() and not msg.attachments:
            return _Accepted(busy, ran=True)  # the feature answered; nothing left to store
        request = None
        if msg.group and not name and not claimed:
            for hook in self.address_hooks:
                if (addressed := await hook(msg)) is not None:
                    msg.addressed, request = True, addressed.request
                    break
        stored = await self._store(msg, request, burst, surface)
        return _Accepted(busy, stored=stored, joined=burst is not None and burst.joined)

    async def _claim(self, msg: IncomingMessage, surface: ReplySurface) -> bool:
        """Offer each file to the features; what one takes leaves the message. When files
        were taken and none is left, what remains (a caption) is kept as context only: the
        feature's reply answers the message."""
        kept = []
        for attachment in msg.attachments:
            call = AttachmentCall(msg, attachment, surface, self)
            for hook in self.attachment_hooks:
                if await hook(call):
                    break
            else:
                kept.append(attachment)
        if len(kept) == len(msg.attachments):
            return False
        msg.attachments = kept
        msg.addressed = bool(kept)
        return True

    async def record(self, msg: IncomingMessage) -> None:
        """Store an earlier message as context, now (what a thread said before the bot was
        called into it: it precedes the message being handled, whose turn in line is held).

        Two messages in a new thread race: the second's build may read the thread before the
        first is stored, and record it here. A message stored already is not recorded again;
        one recorded first is remembered, and its own event replaces the copy when stored."""
        conv = await self.store.conversation(msg.key, shared=msg.group)
        if msg.message_id and conv is not None and await self.store.has_user_message(conv.id, msg.message_id):
            return
        await self._store(msg, None)
        if msg.message_id:
            self._context_copies[msg.key, msg.message_id] = None
            while len(self._context_copies) > CONTEXT_COPIES_KEPT:
                self._context_copies.popitem(last=False)

    async def submit(self, msg: IncomingMessage, surface: ReplySurface, request: TurnRequest | None = None) -> None:
        """Store ``msg`` as waiting for an answer (of ``request``'s kind) and queue it."""
        conv, seq, notices = await self._store(msg, request)
        for notice in notices:
            await self.notify(surface, notice)
        self._queue(conv, seq, surface)

    async def _store(
        self,
        msg: IncomingMessage,
        request: TurnRequest | None,
        burst: Slot | None = None,
        surface: ReplySurface | None = None,
    ) -> tuple[ConversationRow, int, list[str]]:
        """Store the message before anything else can fail (or, in a burst, join it to the
        same author's message just before). Returns its conversation, the sequence number
        of the row it is in and notices for the user."""
        conv = await self.store.conversation(msg.key, shared=msg.group)
        assert conv is not None
        if conv.left:  # a message from the chat means the bot is in it again
            await self.store.mark_left(msg.key.platform, msg.key.workspace, msg.key.chat, False)
        parts, notices, request = await self._parts(msg, request)
        files_only = bool(msg.attachments) and not msg.text.strip()
        if burst is not None and request is None and (joined := await self._join(conv, msg, parts, burst, surface)):
            burst.joined = True
            burst.settle(joined)
            msg.addressed = joined.addressed
            return conv, joined.seq, notices
        if not parts:
            parts.append(NewPart("text", text=""))
        if msg.addressed and (msg.key, msg.message_id) in self._context_copies:
            del self._context_copies[msg.key, msg.message_id]
            await self.store.drop_context_copy(conv.id, msg.message_id)  # its own event supersedes the copy
        message_id, seq = await self.store.add_message(
            conv.id,
            "user",
            parts,
            status="pending" if msg.addressed else "context",
            author_id=msg.author.id,
            author_name=msg.author.name,
            platform_message_id=msg.message_id,
            request=request,
        )
        self._latest[msg.key] = conv.id
        if burst is not None:
            burst.settle(Stored(conv.id, message_id, seq, files_only, msg.addressed) if request is None else None)
            if files_only and msg.addressed and request is None:
                self._held[(conv.id, seq)] = burst  # its worker waits for the same author's follower
        return conv, seq, notices

    async def _join(
        self,
        conv: ConversationRow,
        msg: IncomingMessage,
        parts: list[NewPart],
        burst: Slot,
        surface: ReplySurface | None,
    ) -> Stored | None:
        """Join ``msg`` to the same author's message just before it (a burst): files without
        text and a text, in either order, while that message waits for its answer or its
        answer shows nothing yet (the turn then gives way and asks again, with both)."""
        before = burst.previous.stored if burst.previous is not None else None
        files_only = bool(msg.attachments) and not msg.text.strip()
        if (
            before is None
            or before.conversation_id != conv.id
            or not (before.files_only or files_only)
            or not (before.addressed or msg.addressed)
        ):
            return None
        # Checked and marked with no await between: the worker waits for a join before it
        # reads a batch's history, and a turn already reading it gives way (or the join is off).
        answering = self._answering.get(conv.id)
        if (
            self.coordinator.distributed
            and before.addressed
            and answering is None
            and conv.id not in self._holding
            and (conv.id, before.seq) not in self._held
        ):
            return None  # a waiting message this process does not answer: another may be reading it
        if answering is not None and before.seq in answering.seqs:
            if answering.active is not None and not answering.active.give_way():
                return None  # its answer shows already: this message is a turn of its own
            answering.set_aside = True
            # Asked again where the turn set aside was writing (a card it opened for its
            # status, e.g., is filled by the new answer rather than left behind).
            surface = answering.surface or surface
        joining = self._joining[conv.id] = asyncio.Event()
        try:
            tagged = [
                NewPart(p.kind, p.text, {**(p.data or {}), "message_id": msg.message_id}, p.blob, p.mime)
                if msg.message_id
                else p
                for p in parts
            ]
            if not await self.store.join_message(before.message_id, tagged, pending=before.addressed or msg.addressed):
                return None
        finally:
            joining.set()
            if self._joining.get(conv.id) is joining:
                del self._joining[conv.id]
        log.info("conversation %s: a message joined message %s (a burst)", conv.id, before.seq)
        if surface is not None:  # the answer goes where the newest message was asked
            self._surfaces[(conv.id, before.seq)] = surface
        self._latest[msg.key] = conv.id
        return Stored(
            conv.id, before.message_id, before.seq, before.files_only and files_only, before.addressed or msg.addressed
        )

    async def _parts(
        self, msg: IncomingMessage, request: TurnRequest | None
    ) -> tuple[list[NewPart], list[str], TurnRequest | None]:
        """The stored parts of ``msg``, notices for the user, and the request (documents too
        long for one prompt make it a turn that reads them in parts)."""
        parts: list[NewPart] = []
        notices: list[str] = []
        if msg.text.strip():
            parts.append(NewPart("text", text=msg.text))
        for note in msg.notes:
            parts.append(NewPart("note", text=note))
            notices.append(note)
        images = msg.images
        if images and not self.settings.vision:
            notices.append(texts.VISION_OFF)
        for att in images:
            try:
                img = prepare_image(att.data, att.filename)
            except ImageRejected as exc:
                parts.append(NewPart("note", text=f"image not used: {exc}"))
                notices.append(f"I couldn't use {exc}.")
                continue
            parts.append(
                NewPart(
                    "image",
                    blob=img.data,
                    mime=img.mime,
                    data={"filename": att.filename, "width": img.width, "height": img.height},
                )
            )
        if msg.documents:  # too long for one prompt: a turn that reads them in parts (bot.longdocs)
            may_split = request is None and msg.addressed and READ_IN_PARTS in self.kinds
            arrived = await take_in(msg.documents, self.settings, may_split=may_split)
            parts.extend(arrived.parts)
            notices.extend(arrived.notices)
            if arrived.in_parts:
                request = TurnRequest(READ_IN_PARTS)
        return parts, notices, request

    async def notify(self, surface: ReplySurface, text: str, *, ending: Ending | None = None, to: str = "") -> None:
        """A short message in the bot's own voice (errors, refusals, command replies);
        ``ending``: the message it answers ends here (refused, failed); ``to``: the one
        person it is meant for (shown to them alone where the platform can)."""
        await AnswerWriter(surface, 0, native=False).finish(text, notice=True, ending=ending, audience=to)

    # --- the conversation's worker: one turn at a time, in sequence order ---
    def _queue(self, conv: ConversationRow, seq: int, surface: ReplySurface) -> None:
        self._surfaces[(conv.id, seq)] = surface
        self._kick(conv.id)

    def _kick(self, conversation_id: int) -> None:
        self._wakeups[conversation_id] = self._wakeups.get(conversation_id, 0) + 1
        task = self._workers.get(conversation_id)
        if (task is None or task.done()) and not self._closing:  # shutting down: no new turns here
            self._workers[conversation_id] = asyncio.create_task(
                self._work(conversation_id), name=f"conversation-{conversation_id}"
            )

    async def _settled(self, key: ConversationKey) -> None:
        task = self._workers.get(self._latest.get(key, -1))
        if task is not None:
            await asyncio.shield(task)

    async def _work(self, conversation_id: int) -> None:
        """Answer the conversation's waiting messages while holding its lock (one process,
        one worker at a time); after letting go, look once more (see coordinator.py)."""
        try:
            while not self._closing:
                logformat.bind_conversation(conversation_id)  # log lines carry the ids (turn: _run_turn)
                seen = self._wakeups.get(conversation_id, 0)
                if not await self.coordinator.take(conversation_id):
                    # Another process answers this conversation, our message included.
                    for spot in [k for k in self._surfaces if k[0] == conversation_id]:
                        del self._surfaces[spot]
                    for spot in [k for k in self._held if k[0] == conversation_id]:
                        del self._held[spot]
                    return
                try:
                    drained = await self._answer_pending(conversation_id)
                finally:
                    await self.coordinator.release(conversation_id)
                if not drained:
                    return
                if not self.coordinator.distributed:
                    # One process: every message is queued here and bumps the wakeups, so they
                    # say whether one came in while the lock was let go; no query needed.
                    if self._wakeups.get(conversation_id, 0) == seen:
                        return
                    continue
                # Query first, then compare: a message whose commit the query missed was
                # queued after it, so its wakeup shows here (or it starts a new worker).
                waiting = await self.store.pending(conversation_id)
                if not waiting and self._wakeups.get(conversation_id, 0) == seen:
                    return
        finally:
            if self._workers.get(conversation_id) is asyncio.current_task():
                del self._workers[conversation_id]
                self._wakeups.pop(conversation_id, None)

    async def _answer_pending(self, conversation_id: int) -> bool:
        """Answer turn after turn until nothing waits (True), or give up (False)."""
        while not self._closing:
            seen = self._wakeups.get(conversation_id, 0)
            conv, pending = await self.store.work(conversation_id)
            if not pending:
                if self._wakeups.get(conversation_id, 0) != seen:
                    continue  # a message came in while we looked
                return True
            assert conv is not None
            if conv.left:  # removed from the chat: nothing more is sent there
                log.info(
                    "conversation %s: the bot left the chat; %d message(s) stay unanswered",
                    conversation_id,
                    len(pending),
                )
                for spot in [k for k in self._held if k[0] == conversation_id]:
                    del self._held[spot]
                await self.store.set_message_status([m.id for m in pending], "context")
                return True
            batch = _next_batch(pending)
            if await self._hold(conversation_id, batch):
                continue  # the same author's follower came (and may have joined): look again
            while (joining := self._joining.get(conversation_id)) is not None:
                await joining.wait()
            answering = self._answering[conversation_id] = _Answering([m.seq for m in batch])
            try:
                surface = answering.surface = self._surface_for(conv, batch)
                if surface is None:
                    log.error(
                        "conversation %s: no %s surface to answer on; its messages wait",
                        conversation_id,
                        conv.key.platform,
                    )
                    return False
                try:
                    await self._run_turn(conv, batch, surface, answering)
                except Exception:
                    log.exception("conversation %s: a turn failed before it could start", conversation_id)
                    await self.store.set_message_status([m.id for m in batch], "answered")
                    await self.notify(surface, texts.INTERNAL_ERROR, ending=Ending.FAILED)
            finally:
                del self._answering[conversation_id]
            if answering.set_aside:
                continue  # files joined the question: it is asked again, with them
            if (
                len(batch) == len(pending)
                and self._wakeups.get(conversation_id, 0) == seen
                and not self.coordinator.distributed
            ):
                return True  # one process: the turn took everything that waited, and nothing came in
        return False  # shutting down: what waits is left to another process (or the next start)

    async def _hold(self, conversation_id: int, batch: list[PendingMessage]) -> bool:
        """A burst: when the newest message of the batch is files without text, wait (up to
        the window from its arrival) for the same author's next message to be stored —
        it joins this one. True when one came (the batch is read again)."""
        slots = [held for m in batch if (held := self._held.pop((conversation_id, m.seq), None)) is not None]
        if not slots or self._held_seq(slots[-1]) != batch[-1].seq or self._closing:
            return False
        slot: Slot | None = slots[-1]
        came = False
        self._holding.add(conversation_id)
        try:
            while slot is not None:
                follower = await slot.follower(self.bursts.clock)
                came = came or follower is not None
                if follower is not None and follower.passed:
                    continue  # a redelivery: the same slot waits on for a real follower
                # Files after files: the row still has no text; wait for the next one's follower.
                slot = (
                    follower
                    if follower is not None and follower.stored is not None and follower.stored.files_only
                    else None
                )
        finally:
            self._holding.discard(conversation_id)
        return came

    @staticmethod
    def _held_seq(slot: Slot) -> int:
        return slot.stored.seq if slot.stored is not None else -1

    def _surface_for(self, conv: ConversationRow, batch: list[PendingMessage]) -> ReplySurface | None:
        """Where the newest message of the batch was asked; failing that (another process
        or a restart stored it), a surface the platform makes from the stored message."""
        surface = None
        for message in batch:
            surface = self._surfaces.pop((conv.id, message.seq), None) or surface
        if surface is not None:
            return surface
        platform = self._platforms.get(conv.key.platform)
        last = batch[-1]
        return (
            platform.surface_for(conv.key, reply_to=last.platform_message_id, user=last.author_id)
            if platform is not None
            else None
        )

    def _kind_for(self, conv: ConversationRow, request: TurnRequest | None) -> TurnRequest:
        if request is not None:
            return request
        for handler in self.kinds.values():  # a style makes a plain message a brief
            if handler.kind != TurnKind.CHAT and handler.takes_plain_messages(conv):
                return TurnRequest(handler.kind)
        return TurnRequest(TurnKind.CHAT)

    async def _run_turn(
        self,
        conv: ConversationRow,
        batch: list[PendingMessage],
        surface: ReplySurface,
        answering: _Answering | None = None,
    ) -> None:
        asker = batch[-1].author_id
        refusal = await self.ops.quotas.check(conv.id, conv.key.platform, asker)
        if refusal is not None:  # a reached quota: nothing goes to the model
            await self.store.set_message_status([m.id for m in batch], "refused")
            await self.notify(surface, refusal.text, ending=Ending.REFUSED, to=asker)
            return
        request = self._kind_for(conv, batch[-1].request)
        request_seq = batch[-1].seq
        history = [
            m
            for m in await self.store.history(conv.id, conv.history_start)
            if not (m.role == "user" and m.seq > request_seq)
        ]  # later ones wait their turn
        settings = self.settings
        wanted = images_wanted(history, settings.max_images) if settings.vision else []
        images = await self.store.attachment_data(wanted)
        additions = [a for hook in self.prompt_hooks if (a := await hook(conv, request.kind, history)) is not None]
        system = "\n\n".join(
            [
                self.system_prompt,
                *filter(None, (handler.system_addition(conv) for handler in self.kinds.values())),
                *(a.system for a in additions if a.system),
            ]
        )
        examples = [m for a in additions for m in a.examples]
        newest = "\n\n".join(a.newest for a in additions if a.newest)
        reserved = cost_of(examples) + estimate_tokens(newest)  # never trimmed: history gives way
        prompt = build_prompt(
            system,
            history,
            images,
            budget_tokens=settings.context_tokens - settings.max_tokens - reserved,
            max_images=settings.max_images,
            token_ratio=conv.token_ratio,
            group=conv.shared,
            vision=settings.vision,
        )
        if examples or newest:
            prompt.messages = with_additions(prompt.messages, examples, newest)
            prompt.estimated_tokens += int(reserved * max(conv.token_ratio, 1.0))
        if prompt.new_history_start is not None:
            await self.store.set_history_start(conv.id, prompt.new_history_start)
        options: dict[str, Any] = {
            "max_tokens": settings.max_tokens,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
        }
        if request.kind != TurnKind.CHAT or request.extra:
            options["request"] = request.to_json()  # so Regenerate can redo it the same way
        if answering is not None and answering.set_aside:
            return  # files joined the question while its prompt was built: nothing started yet
        turn_id, answer_seq = await self.store.start_turn(
            conv.id, request_seq, settings.model, options, request.kind, prompt.estimated_tokens
        )
        logformat.bind_turn(turn_id)
        plan = TurnPlan(
            conv,
            surface,
            request.kind,
            request.extra,
            turn_id,
            answer_seq,
            prompt.messages,
            prompt.estimated_tokens,
            [m.seq for m in batch],
            asker,
        )
        active = self._active[conv.id] = ActiveTurn(turn_id, conv.id)
        if answering is not None:
            answering.active = active
            if answering.set_aside:  # joined while the turn was opened: it gives way at once
                active.stop(StopReason.MERGED)
        try:
            # Every gateway call of the turn is priced, stored and counted against quotas.
            gateway = self.ops.meter.for_turn(
                self._gateway, turn_id, conv.id, conv.key.platform, asker, str(request.kind)
            )
            await TurnRunner(plan, active, settings=settings, store=self.store, gateway=gateway, kinds=self.kinds).run()
        finally:
            active.done.set()
            if self._active.get(conv.id) is active:
                del self._active[conv.id]

    # --- membership ---
    async def chat_left(self, platform: str, workspace: str, chat: str) -> None:
        """The bot was removed from a chat (or blocked): record it, stop what streams there,
        and send nothing more there until it is back."""
        await self.store.mark_left(platform, workspace, chat, True)
        for conversation_id, active in list(self._active.items()):
            conv = await self.store.conversation_by_id(conversation_id)
            where = (conv.key.platform, conv.key.workspace, conv.key.chat) if conv is not None else None
            if where == (platform, workspace, chat):
                active.stop(StopReason.GONE)
        log.info("%s: the bot left chat %s", platform, chat)

    async def chat_joined(self, platform: str, workspace: str, chat: str) -> None:
        await self.store.mark_left(platform, workspace, chat, False)

    # --- controls ---
    def streaming(self, key: ConversationKey) -> int | None:
        """The turn streaming in ``key``'s conversation now, if any."""
        active = self._active.get(self._latest.get(key, -1))
        return active.turn_id if active is not None else None

    async def wait_turn(self, turn_id: int) -> None:
        """Return once ``turn_id`` is written and stored (its controls show before its last
        save: a click on them must not read a half-stored turn)."""
        for active in list(self._active.values()):
            if active.turn_id == turn_id:
                await active.done.wait()

    def _stop_here(self, turn_id: int) -> bool:
        for active in self._active.values():
            if active.turn_id == turn_id:
                active.stop()
                return True
        return False

    async def stop(self, turn_id: int) -> bool:
        """Stop a streaming turn, whichever process streams it."""
        if self._stop_here(turn_id):
            return True
        turn = await self.store.turn(turn_id)
        if turn is None or turn.state is not TurnState.STREAMING:
            return False
        await self.coordinator.signal_stop(turn_id)
        return True

    async def stop_conversation(self, key: ConversationKey) -> bool:
        conv = await self.store.conversation(key, create=False)
        if conv is None:
            return False
        active = self._active.get(conv.id)
        if active is not None:
            active.stop()
            return True
        streaming = await self.store.streaming_turn(conv.id)
        return streaming is not None and await self.stop(streaming)

    async def click(self, click: Click, surface: ReplySurface, admission: Admission = ADMITTED) -> Ack:
        """A click on a control, as an adapter reports it (the control's data)."""
        press = Press.decode(click.data)
        if press is None:
            return Ack(texts.STALE_CONTROL)
        return await self.act(Action(press, click.user, click.key), surface, admission)

    async def act(self, action: Action, surface: ReplySurface, admission: Admission = ADMITTED) -> Ack:
        """A click on one of our controls; returns the acknowledgement for the clicker.
        ``surface`` is where a new answer (Regenerate, a refinement) goes."""
        decision = await self.decide(action.key, action.user.id, admission=admission)
        if not decision.allowed:  # a refused user's click is refused like their messages
            return Ack(decision.text or texts.NOT_AVAILABLE, personal=True)
        return await self._act(action, surface)

    async def _act(self, action: Action, surface: ReplySurface) -> Ack:
        press = action.press
        if press.kind == ControlKind.STOP and not press.args:
            stopped = await self.stop(press.turn_id) if press.turn_id else await self.stop_conversation(action.key)
            return Ack("Stopping…" if stopped else "This answer is already finished.")
        if press.kind == ControlKind.FEEDBACK and press.args in (("1",), ("-1",)):
            value = int(press.args[0])
            await self.store.set_feedback(press.turn_id, action.user.id, value)
            return Ack(texts.FEEDBACK_UP if value > 0 else texts.FEEDBACK_DOWN, personal=True)
        if press.kind == ControlKind.REGENERATE and not press.args:
            return Ack(await self._regenerate(press.turn_id, surface))
        handler = self.presses.get(press.kind)
        text = await handler(action, surface, self) if handler is not None else None
        if isinstance(text, Ack):  # a handler that says whom its answer is for
            return text
        return Ack(text if text is not None else texts.STALE_CONTROL)

    async def _regenerate(self, turn_id: int, surface: ReplySurface) -> str:
        await self.wait_turn(turn_id)
        turn = await self.store.turn(turn_id)
        if turn is None:
            await self.notify(surface, texts.NOTHING_TO_REGENERATE)
            return texts.NOTHING_TO_REGENERATE
        conv = await self.store.conversation(turn.key)
        assert conv is not None
        if turn.conversation_id != conv.id:
            await self.notify(surface, texts.EARLIER_CONVERSATION)
            return texts.EARLIER_CONVERSATION
        if conv.id in self._active:
            await self.notify(surface, texts.STILL_ANSWERING)
            return texts.STILL_ANSWERING
        # The old answer stays in the chat but leaves the history; its question is asked
        # anew, the same way (a refinement stays a refinement).
        if turn.response_message_id is not None:
            await self.store.supersede(turn.response_message_id)
        await self.store.reopen_question(conv.id, turn.request_seq, turn.request)
        self._latest[turn.key] = conv.id
        self._queue(conv, turn.request_seq, surface)
        return "Writing a new answer…"

    # --- the core's own commands ---
    async def _help(self, call: CommandCall) -> None:
        await self.notify(call.surface, self.commands.help_text(texts.HELP_INTRO), to=call.msg.author.id)

    async def _new(self, call: CommandCall) -> None:
        await self.store.new_epoch(call.msg.key)
        await self.notify(call.surface, texts.NEW_THREAD)

    async def _usage(self, call: CommandCall) -> None:
        """Your usage today and this month and the conversation's; ``/usage all`` for admins."""
        msg = call.msg
        conv = await self.store.conversation(msg.key, shared=msg.group)
        await self.notify(
            call.surface,
            await self.ops.usage_text(
                conv.id if conv else None, msg.key.platform, msg.author.id, all_users=call.args.strip().lower() == "all"
            ),
            to=msg.author.id,
        )

    async def _stop_command(self, call: CommandCall) -> None:
        if not await self.stop_conversation(call.msg.key):
            await self.notify(call.surface, texts.NOTHING_TO_STOP, to=call.msg.author.id)


@dataclass(slots=True)
class _Answering:
    """The batch a conversation's worker answers now (what a burst's files may join)."""

    seqs: list[int]
    active: ActiveTurn | None = None  # once its turn opened
    surface: ReplySurface | None = None  # where it answers
    set_aside: bool = False  # files joined its question: asked again, with them


@dataclass(frozen=True, slots=True)
class _Accepted:
    busy: bool  # an answer was running in the conversation when the message arrived
    command: tuple[str, str] | None = None  # (name, args) to run after the message's turn in line
    unknown: str = ""  # a command nobody registered: told so, never sent to the model
    stored: tuple[ConversationRow, int, list[str]] | None = None  # conversation, seq, notices
    ran: bool = False  # a command already run in line (it may have queued a turn: wait for it)
    joined: bool = False  # a burst: the message joined the one before (already queued there)


def _next_batch(pending: list[PendingMessage]) -> list[PendingMessage]:
    """The messages the next turn answers: a request (a /copy, a refinement, a regeneration)
    alone, or every plain message up to the next request, together."""
    if pending[0].request is not None:
        return pending[:1]
    batch = []
    for message in pending:
        if message.request is not None:
            break
        batch.append(message)
    return batch
