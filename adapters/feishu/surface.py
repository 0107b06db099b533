"""Where one answer is written in Feishu: a chat, its thread, the message it answers.

Answers stream into CardKit cards (``CardStream``, the core's native stream): the card is
created with the first words (or, while the model still thinks, with a status line that
says so — the same card then takes the text), sent as a reply, pushed the whole text so far
with a strictly increasing ``sequence``, and closed with one whole-card update that writes
the final text and controls and turns streaming mode off — no card is left on "生成中…".
Before the platform's 10-minute streaming limit and the card size limit the core continues
on a new card. A card whose streaming Feishu ended (300309 / 200850) or refused as too big
(200860) is settled once with what it shows and the answer goes on in a card message the
surface patches in place; so does every answer where CardKit is refused.

A notice meant for one person (``Write.audience``: a refusal, a reached quota, /help) asked in
an ordinary group's main chat is a card only that person sees (``ephemeral/v1/send``, marked
"Only visible to you"). Feishu puts such a card at the group's top level, takes no topic group
and no private chat: in a topic or thread, in a private chat, or when Feishu refuses it, the
notice is posted as usual. Such a card cannot be patched: an edit shows it anew.

Every write carries its priority (``bot.platform.Priority``): an answer's first message
first, final writes next, then pushes; pushes are skipped when their budget has no room
(the next one carries the whole text), and status lines only use spare capacity.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from adapters.feishu import cards
from adapters.feishu.api import FeishuApi, FeishuError
from bot.platform import (
    Button,
    Controls,
    Dropped,
    MessageRef,
    NativeStream,
    Priority,
    RateLimited,
    ReplySurface,
    Step,
    StreamUnavailable,
    SurfaceGone,
    SurfaceLimits,
    Write,
    WriteFailed,
    stop_press,
)

log = logging.getLogger(__name__)

# The chat no longer takes the bot's messages: removed from the group, no access to the user,
# the bot switched off.
GONE = frozenset({230002, 230006, 230013, 230017, 232009})
# The message being answered is gone (withdrawn, deleted): answer in the chat instead.
TARGET_GONE = frozenset({230011, 231003})
STREAMING_ENDED = frozenset({300309, 200850})  # closed (by the bot or the 10-minute limit), timed out
CARD_TOO_BIG = 200860
TICKS = 10  # sequence ticks a second (see CardState.next)
RESTART_MARGIN = 20  # ticks added for a card another process (or a restart) wrote last
STOP_LABEL = "⏹ Stop"
KNOWN_CARDS = 4096  # CardKit cards remembered by message id (their sequence counters)
EPHEMERAL = "ephemeral:"  # a MessageRef id prefix: a card only one person sees (not editable)


@dataclass
class CardState:
    """A CardKit card entity and its one sequence counter (every card operation takes the
    next number; Feishu refuses one not above the last with 300317)."""

    card_id: str
    message_id: str = ""
    created: float = field(default_factory=time.time)  # wall clock: survives a restart in the ref
    last: int = 0
    streaming: bool = True
    lines: set[str] = field(default_factory=set)  # the status / steps lines the card shows now
    inherited: bool = False  # known from a stored ref: another process (or a restart) wrote it last
    ended: bool = False  # Feishu ended its streaming (300309 / 200850)
    rate: float = TICKS  # sequence ticks a (real) second: TICKS / PLATFORM_TIME_SCALE
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def next(self) -> int:
        """Strictly above the last number used, and never below a tenth-second clock that
        starts at the card's creation: a process that did not write the card's last operation
        (a restart repairing it) still numbers above it. Ten operations a second per card at
        most (the card's budget) keep the counter within a burst of the clock."""
        clock = int((time.time() - self.created) * self.rate) + 1
        if self.inherited and self.last == 0:
            clock += RESTART_MARGIN
        self.last = max(self.last + 1, clock)
        return self.last

    @property
    def ref(self) -> MessageRef:
        return MessageRef(encode_ref(self))


def encode_ref(card: CardState) -> str:
    """A CardKit card's message as the core stores it: the message id, the card id and when
    the card was made, so any process can finish the card later."""
    return f"{card.message_id}/{card.card_id}/{int(card.created)}"


def decode_ref(ref: str, rate: float = TICKS) -> tuple[str, CardState | None]:
    message_id, _, rest = ref.partition("/")
    card_id, _, created = rest.partition("/")
    if not card_id:
        return message_id, None
    try:
        made = float(created)
    except ValueError:
        made = time.time() - 600  # unknown: assume an old card
    return message_id, CardState(card_id, message_id, made, streaming=False, inherited=True, rate=rate)


@dataclass(frozen=True, slots=True)
class Place:
    chat_id: str
    reply_to: str = ""  # the message answered ("": post in the chat)
    in_thread: bool = False  # answer in reply_to's thread (话题)
    thread: str = ""  # the conversation's thread key (drawn into the controls)
    # Asked in an ordinary group's main chat, not inside a topic or thread: a notice for one
    # person can be a card only they see (Feishu shows it at the group's top level, so from
    # inside a thread it would leave the thread; private chats and topic groups have none).
    main_chat: bool = False

    @property
    def where(self) -> cards.Where:
        return cards.Where(self.thread, self.reply_to)


@dataclass
class FeishuOutlet:
    """What every surface of one app shares."""

    api: FeishuApi
    edit_interval: float = 1.0  # a patched card message (5 a second per message, our pace 1)
    stream_interval: float = 0.7
    stream_max_age: float = 540.0
    text_limit: int = 20_000
    cardkit: bool = True
    cardkit_refused: bool = False
    tick_rate: float = TICKS  # card sequence ticks a second (TICKS / PLATFORM_TIME_SCALE)
    nonce: str = field(default_factory=lambda: secrets.token_hex(4))
    cards: OrderedDict[str, CardState] = field(default_factory=OrderedDict)  # by message id
    _surfaces: int = 0

    def remember(self, card: CardState) -> None:
        self.cards[card.message_id] = card
        self.cards.move_to_end(card.message_id)
        while len(self.cards) > KNOWN_CARDS:
            self.cards.popitem(last=False)

    def card_of(self, ref: MessageRef) -> tuple[str, CardState | None]:
        message_id, decoded = decode_ref(ref.id, self.tick_rate)
        return message_id, self.cards.get(message_id) or decoded

    def serial(self) -> int:
        self._surfaces += 1
        return self._surfaces

    @property
    def streams(self) -> bool:
        return self.cardkit and not self.cardkit_refused


def failure(what: str, exc: FeishuError) -> WriteFailed:
    return (SurfaceGone if exc.code in GONE else WriteFailed)(f"{what}: {exc}")


@dataclass
class Pending:
    """A card opened for an answer before its text (the model thinks): the answer's first
    write takes it over. ``card`` None: a card message (no CardKit)."""

    message_id: str
    card: CardState | None
    opened: float = field(default_factory=time.monotonic)


class FeishuSurface(ReplySurface):
    def __init__(self, outlet: FeishuOutlet, place: Place) -> None:
        self.outlet = outlet
        self.api = outlet.api
        self.place = place
        self.limits = SurfaceLimits(
            max_chars=outlet.text_limit, edit_interval=outlet.edit_interval, measure=cards.measure
        )
        self._serial = outlet.serial()
        self._sends = 0
        self.pending: Pending | None = None  # the card opened while the model thinks
        self.stream: CardStream | None = None  # the page streaming now
        self._status = ""
        self.opening = asyncio.Lock()  # one card opened at a time (the status and the text race for it)

    # --- sending ---
    def _uuid(self) -> str:
        """Feishu keeps one message per uuid for an hour: a send retried after a failure that
        may have landed posts nothing twice."""
        return f"{self.outlet.nonce}-{self._serial}-{self._sends}"

    async def send(self, content: dict, *, priority: Priority = Priority.TEXT) -> str:
        """Send a card (inline JSON or ``{"type": "card", …}``) as this surface's next message."""
        place, uuid = self.place, self._uuid()
        data = cards.dumps(content)
        try:
            message_id = await self.api.send(
                place.chat_id,
                "interactive",
                data,
                reply_to=place.reply_to or None,
                in_thread=place.in_thread,
                uuid=uuid,
                priority=priority,
            )
        except FeishuError as exc:
            if exc.code not in TARGET_GONE or not place.reply_to:
                raise failure("send", exc) from exc
            log.info("feishu: the message answered in %s is gone (%s); answering in the chat", place.chat_id, exc)
            try:
                message_id = await self.api.send(place.chat_id, "interactive", data, uuid=uuid + "c", priority=priority)
            except FeishuError as again:
                raise failure("send", again) from again
        self._sends += 1
        return message_id

    # --- ReplySurface ---
    async def post(self, text: str, write: Write) -> MessageRef:
        pending = await self.take_pending()
        if pending is not None:  # the thinking card becomes this message
            ref = MessageRef(encode_ref(pending.card)) if pending.card is not None else MessageRef(pending.message_id)
            return await self.edit(ref, text, write)
        body = cards.card(text, controls=write.controls, where=self.place.where, preview=cards.summary(text))
        if write.audience and self.place.main_chat:
            shown = await self._ephemeral(body, write.audience)
            if shown is not None:
                return shown
        return MessageRef(await self.send(body, priority=Priority.TEXT))

    async def _ephemeral(self, body: dict, open_id: str) -> MessageRef | None:
        """``body`` as a card only ``open_id`` sees; None when Feishu refuses it (a topic group,
        a person no longer in the group): the caller posts it for everyone instead."""
        chat_id = self.place.chat_id
        try:
            message_id = await self.api.send_ephemeral(chat_id, open_id, body, priority=Priority.TEXT)
        except FeishuError as exc:
            if exc.code in GONE or exc.code == 0:  # the chat is gone, or no answer: as any send
                raise failure("ephemeral send", exc) from exc
            log.info("feishu: a card for one person refused in %s (%s); posting it", chat_id, exc)
            return None
        return MessageRef(EPHEMERAL + message_id)

    async def edit(self, ref: MessageRef, text: str, write: Write) -> MessageRef:
        if ref.id.startswith(EPHEMERAL):  # Feishu can't patch a card only one person sees: show it anew
            shown = await self.post(text, write)
            try:  # and take the old one away, so its reader sees one card
                await self.api.delete_ephemeral(ref.id.removeprefix(EPHEMERAL), priority=Priority.EDIT)
            except (FeishuError, RateLimited, Dropped) as exc:
                log.debug("feishu: card %s for one person not deleted: %s", ref.id, exc)
            return shown
        message_id, card = self.outlet.card_of(ref)
        priority = Priority.FINAL if write.final else Priority.EDIT
        if card is not None:
            await self.rewrite(card, text, write, priority)
            return ref
        body = cards.card(text, controls=write.controls, where=self.place.where)
        try:
            await self.api.patch(message_id, body, priority=priority)
        except FeishuError as exc:
            raise failure("patch", exc) from exc
        return ref

    async def rewrite(self, card: CardState, text: str, write: Write, priority: Priority) -> None:
        """A CardKit card anew, whole; a final write turns its streaming mode off."""
        streaming = not write.final
        # A card whose streaming Feishu may have ended itself (its 10 minutes ran out, or a
        # card another process left) still reads "生成中…" in the chat list until the bot turns
        # streaming off: it is turned on with the new content, then off.
        uncertain = not streaming and (card.ended or card.inherited)
        body = cards.card(text, controls=write.controls, where=self.place.where, streaming=streaming or uncertain)
        async with card.lock:
            try:
                await self.api.update_card(card.card_id, body, card.next(), priority=priority)
                if uncertain:
                    settings = {"config": {"streaming_mode": False, "summary": {"content": cards.summary(text)}}}
                    await self.api.card_settings(card.card_id, settings, card.next(), priority=priority)
            except FeishuError as exc:
                raise failure("card update", exc) from exc
            card.streaming, card.ended, card.inherited = streaming, False, False
            card.lines.clear()

    @staticmethod
    def stop_controls(turn_id: int) -> tuple[tuple[Button, ...], ...]:
        """Stop, on a card that streams (0: whatever the conversation is answering)."""
        return ((Button(STOP_LABEL, stop_press(turn_id), "danger"),),)

    async def set_status(self, status: str) -> None:
        """Cosmetic: a status line on the answer's card (opened for it while the model
        thinks); dropped without spare capacity, never retried."""
        if status == self._status:
            return
        self._status = status
        try:
            if status and self.pending is None and (self.stream is None or self.stream.card is None):
                async with self.opening:  # the first words may be opening the answer's card right now
                    if self.pending is None and (self.stream is None or self.stream.card is None):
                        self.pending = await self._open_pending(status)
                        return
            stream = self.stream
            if stream is not None and stream.card is not None:
                await stream.show_status(status)
            elif self.pending is not None and self.pending.card is not None and status:
                # "" once the first words come: they replace the whole card anyway.
                await self.show_line(self.pending.card, cards.STATUS, cards.status_line(status))
        except (Dropped, RateLimited, WriteFailed, StreamUnavailable, FeishuError) as exc:
            log.debug("feishu: status not shown in %s: %s", self.place.chat_id, exc)

    @property
    def status(self) -> str:
        """The status line asked for last ("" none)."""
        return self._status

    async def open_stream(self, turn_id: int) -> NativeStream | None:
        if not self.outlet.streams:
            return None
        # A card opened while the model thought has been streaming since: it rolls over sooner.
        age = time.monotonic() - self.pending.opened if self.pending is not None else 0.0
        self.stream = CardStream(
            self, turn_id, max_age=max(self.outlet.stream_interval, self.outlet.stream_max_age - age)
        )
        return self.stream

    # --- the thinking card ---
    async def _open_pending(self, status: str, *, steps: str = "") -> Pending | None:
        body = cards.card(
            None,
            status=status,
            steps=steps,
            streaming=self.outlet.streams,
            controls=self.stop_controls(0),
            where=self.place.where,
        )
        if not self.outlet.streams:
            return Pending(await self.send(body), None)
        card = await self.create_card(body)
        if card is None:
            return None
        card.message_id = await self.send(cards.entity(card.card_id))
        card.lines = {element for element, shown in ((cards.STATUS, status), (cards.STEPS, steps)) if shown}
        self.outlet.remember(card)
        return Pending(card.message_id, card)

    async def show_line(self, card: CardState, element_id: str, content: str) -> None:
        """Show, change or (with "") remove a status or steps line on a streaming card, just
        above its buttons. Cosmetic: dropped without spare capacity."""
        if not card.streaming:
            return
        async with card.lock:
            if content and element_id not in card.lines:
                await self.api.add_elements(
                    card.card_id, [cards.line(element_id, content)], cards.CONTROLS, card.next()
                )
                card.lines.add(element_id)
            elif content:
                await self.api.card_content(card.card_id, element_id, content, card.next(), priority=Priority.COSMETIC)
            elif element_id in card.lines:
                await self.api.delete_element(card.card_id, element_id, card.next())
                card.lines.discard(element_id)

    async def show_steps(self, turn_id: int, steps: Sequence[Step]) -> bool:
        """The tool calls at work, one line each on the answer's card (opened for them when
        the model calls a tool before writing). Cosmetic; the final card leaves them out."""
        if not self.outlet.streams:
            return False  # a card message: the core puts them on the status line
        content = cards.steps_lines(steps)
        try:
            if content and self.pending is None and (self.stream is None or self.stream.card is None):
                async with self.opening:
                    if self.pending is None and (self.stream is None or self.stream.card is None):
                        self.pending = await self._open_pending(self._status, steps=content)
                        return True
            card = (
                self.stream.card
                if self.stream is not None and self.stream.card is not None
                else self.pending.card
                if self.pending is not None
                else None
            )
            if card is not None:
                await self.show_line(card, cards.STEPS, content)
        except (Dropped, RateLimited, WriteFailed, StreamUnavailable, FeishuError) as exc:
            log.debug("feishu: tool steps not shown in %s: %s", self.place.chat_id, exc)
        return True

    async def take_pending(self) -> Pending | None:
        async with self.opening:
            pending, self.pending = self.pending, None
            return pending

    async def create_card(self, body: dict) -> CardState | None:
        """A CardKit card entity, or None when CardKit is refused (then remembered for the app)."""
        try:
            card_id = await self.api.create_card(body, priority=Priority.TEXT)
        except FeishuError as exc:
            if exc.code == 0 or exc.status >= 500:
                raise StreamUnavailable(f"card create: {exc}") from exc
            if not self.outlet.cardkit_refused:
                log.warning("feishu: CardKit refused (%s): answers go in card messages patched in place", exc)
            self.outlet.cardkit_refused = True
            return None
        return CardState(card_id, rate=self.outlet.tick_rate)


class CardStream:
    """One page of an answer streamed into one CardKit card."""

    def __init__(self, surface: FeishuSurface, turn_id: int, *, max_age: float) -> None:
        self.surface = surface
        self.turn_id = turn_id
        outlet = surface.outlet
        self.limits = SurfaceLimits(
            max_chars=outlet.text_limit, edit_interval=outlet.stream_interval, measure=cards.measure, max_age=max_age
        )
        self.card: CardState | None = None
        self.shown = ""  # what the card's answer element holds
        self.claimed = ""  # what the core believes is shown (a push may have been skipped)

    @property
    def ref(self) -> MessageRef | None:
        return self.card.ref if self.card is not None and self.card.message_id else None

    @property
    def api(self) -> FeishuApi:
        return self.surface.api

    def _body(self, text: str, controls: Controls, *, status: str = "") -> dict:
        return cards.card(
            text, controls=controls, where=self.surface.place.where, streaming=True, status=status, preview="…"
        )

    async def _open(self, text: str, controls: Controls) -> None:
        """The first words: on the card opened while the model thought, else on a new card."""
        surface = self.surface
        async with surface.opening:
            pending, surface.pending = surface.pending, None
            status = surface.status  # a tool may already be at work
            if pending is not None and pending.card is not None:
                card = pending.card
                async with card.lock:
                    try:
                        await self.api.update_card(
                            card.card_id, self._body(text, controls, status=status), card.next(), priority=Priority.TEXT
                        )
                    except FeishuError as exc:
                        surface.pending = pending  # post() takes it over
                        if exc.code in GONE:
                            raise failure("card update", exc) from exc
                        raise StreamUnavailable(f"card update: {exc}") from exc
                    card.streaming = True
            else:
                surface.pending = pending  # a card message (no CardKit): post() takes it over
                created = await surface.create_card(self._body(text, controls, status=status))
                if created is None:
                    raise StreamUnavailable("CardKit refused")
                card = created
                card.message_id = await surface.send(cards.entity(card.card_id))
                surface.outlet.remember(card)
            card.lines = {cards.STATUS} if status else set()
            self.card = card
        self.shown = self.claimed = text

    async def update(self, text: str, write: Write) -> None:
        if self.card is None:
            await self._open(text, write.controls)  # the core's controls (Stop) on the card
            return
        card = self.card
        if (
            text == self.shown
            or not card.streaming
            or not self.api.has_room("cardkit.card_element.content", self.api.budgets.card(card.card_id))
        ):
            self.claimed = text  # skipped: the next push (or the final update) carries everything
            return
        ended: FeishuError | None = None
        async with card.lock:
            try:
                await self.api.card_content(card.card_id, cards.ANSWER, text, card.next())
            except FeishuError as exc:
                if exc.code in GONE:
                    raise failure("card push", exc) from exc
                if exc.code not in STREAMING_ENDED and exc.code != CARD_TOO_BIG:
                    raise WriteFailed(f"card push: {exc}") from exc
                ended = exc
        if ended is not None:
            # Never pushed again: the card is settled once, showing what the core believes it
            # shows, and the rest of the answer goes on in a new message.
            log.warning("feishu: card %s ended (%s); the answer continues in a new message", card.card_id, ended)
            card.ended = ended.code in STREAMING_ENDED
            await self._settle(card)
            raise StreamUnavailable(f"card push: {ended}")
        self.shown = self.claimed = text

    async def _settle(self, card: CardState) -> None:
        try:
            await self.surface.rewrite(card, self.claimed or "…", Write(self.turn_id, final=True), Priority.FINAL)
            self.shown = self.claimed
        except (WriteFailed, RateLimited) as exc:
            log.warning("feishu: could not settle card %s: %s", card.card_id, exc)
            card.streaming = False

    async def show_status(self, status: str) -> None:
        """A status line under the text (the model thinking again after a tool); cosmetic."""
        if self.card is not None:
            await self.surface.show_line(self.card, cards.STATUS, cards.status_line(status) if status else "")

    async def close(self, text: str, write: Write) -> MessageRef:
        if self.card is None:  # nothing streamed: one message, no card entity
            return await self.surface.post(text, write)
        card = self.card
        await self.surface.rewrite(card, text, write, Priority.FINAL)
        self.shown = self.claimed = text
        return card.ref
