"""Where one answer is written in Telegram: a chat, its forum topic, the message asked.

``TelegramSurface`` is the core's ReplySurface (send, then edit); in private chats it
offers a ``DraftStream`` (sendMessageDraft) that ends with a normal message; files (an
exported card) go out with sendDocument. Every call
goes through the bot's shared budgets (``calls.call``) with its priority: a message's
first text first, final writes next, then edits and drafts; the typing action is cosmetic
(only spare capacity, dropped otherwise, never retried).

Rich messages (Bot API 10.1, ``rich``): a final write whose Markdown has headings, tables,
lists or code, copy variants with their buttons, or an answer longer than a formatted message
allows goes out as one rich message (``sendRichMessage``, or ``rich_message`` on the edit of the
message that streamed); a private chat's draft streams as a rich draft once the text has such
structure, and a bot whose rich drafts work lets a draft's page grow to a rich message's size.
Streaming edits stay plain. Ephemeral messages (10.2/10.3): a notice meant for one person
(``Write.audience``) in a group is shown to that person alone. Each feature falls back to
today's rendering when Telegram refuses it, and a bot that lacks one stops asking for it.

Tool progress (``show_steps``) is a line under the answer: in the draft of a private chat
(cosmetic, like the typing action), or in the answer's message elsewhere (a message holding
only the line is posted when the answer has none yet, and the answer's first text then takes
it over; such a write only takes a slot that is free at once). The final write drops the line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from telegram import Bot, InputFile, ReplyParameters
from telegram.constants import ChatAction
from telegram.error import BadRequest, EndPointNotFound, TelegramError
from telegram.warnings import PTBUserWarning

from adapters.telegram import keyboards, render, rich
from adapters.telegram.budgets import Budgets
from adapters.telegram.calls import call, is_entity_error
from adapters.telegram.stops import STOP_KWARGS, DraftStops, draft_id_for, send_draft
from bot.platform import (
    Choice,
    Controls,
    Dropped,
    MessageRef,
    NativeStream,
    Priority,
    RateLimited,
    ReplySurface,
    Step,
    StreamUnavailable,
    SurfaceLimits,
    Write,
    WriteFailed,
    steps_line,
    utf16_len,
)

log = logging.getLogger(__name__)

# The core cuts pages by the Markdown source; rendering changes the length a little
# (headings gain an emoji), so leave room below Telegram's 4096 and split again if needed.
PAGE_UNITS = 4000
CAPTION_LIMIT = 1024  # a document's caption, in characters
EPHEMERAL = "e"  # an ephemeral message's ref: its ephemeral_message_id behind this mark
_RICH = "rich"  # marks what a rich message shows, in TelegramSurface._shown

T = TypeVar("T")

# Sends and edits go through Bot.do_api_request, which answers the API's own JSON: Bot.send_message
# would parse every answer into a Message (with its chat, sender and keyboard) to read one id.
# do_api_request warns when a typed method exists; that is the point here.
warnings.filterwarnings("ignore", message=r"Please use 'Bot\.(sendMessage|editMessageText)'", category=PTBUserWarning)


@dataclass(frozen=True, slots=True)
class Place:
    chat_id: int
    thread_id: int | None = None  # forum topic
    reply_to: int | None = None  # the message being answered (groups)
    private: bool = True


@dataclass
class TelegramOutlet:
    """What every surface of one bot shares."""

    bot: Bot
    budgets: Budgets
    drafts: bool  # TELEGRAM_DRAFTS
    drafts_refused: set[int] = field(default_factory=set)  # chats that refused a draft
    stops: DraftStops = field(default_factory=DraftStops)  # drafts carry a stop button
    caps: rich.Capabilities = field(default_factory=rich.Capabilities)  # rich and ephemeral messages


class TelegramSurface(ReplySurface):
    def __init__(self, channel: TelegramOutlet, place: Place) -> None:
        self.channel = channel
        self.bot = channel.bot
        self.place = place
        self.budgets = channel.budgets
        interval = self.budgets.pacing.private if place.private else self.budgets.pacing.group
        self.limits = SurfaceLimits(max_chars=PAGE_UNITS, edit_interval=interval, measure=utf16_len)
        self._shown: dict[int, tuple] = {}  # message id -> (text, entities, markup) it shows
        self._typing: asyncio.Task | None = None
        # Tool steps, per turn: the line, the turn's draft, the answer's message and its text
        # (to redraw the line under it), a message posted for the line alone, finished turns.
        self._lines: dict[int, str] = {}
        self._drafts: dict[int, DraftStream] = {}
        self._answers: dict[int, tuple[MessageRef, str]] = {}
        self._line_only: dict[int, MessageRef] = {}
        self._finished: set[int] = set()

    # ---- ReplySurface ------------------------------------------------------------------
    async def post(self, text: str, write: Write) -> MessageRef:
        waiting = self._line_only.pop(write.turn_id, None) if write.turn_id else None
        if waiting is not None:  # the turn's steps posted a message: the answer takes it over
            return await self.edit(waiting, text, write)
        self._note(write, None, text)
        if self._rich_wanted(text, write) and (sent := await self._post_rich(text, write)) is not None:
            self._note(write, sent, text)
            return sent
        pages = self._render(self._with_line(text, write), write)
        audience = self._audience(write)
        ids: list[str] = []
        for i, page in enumerate(pages):
            markup = keyboards.markup_json(write.controls) if i == len(pages) - 1 else None
            ids.append(await self._send(page, markup, Priority.TEXT, audience))
        ref = MessageRef(ids[0], tuple(ids[1:]))
        self._note(write, ref, text)
        return ref

    async def edit(self, ref: MessageRef, text: str, write: Write) -> MessageRef:
        if ref.id.startswith(EPHEMERAL):  # edited by methods of its own, and only ever a notice: write anew
            return await self.post(text, write)
        self._note(write, ref, text)
        if self._rich_wanted(text, write) and await self._edit_rich(ref, text, write):
            ref = MessageRef(ref.id)
            self._note(write, ref, text)
            return ref
        pages = self._render(self._with_line(text, write), write)
        ids = list(ref.ids)
        priority = Priority.FINAL if write.final else Priority.EDIT
        for i, page in enumerate(pages):
            markup = keyboards.markup_json(write.controls) if i == len(pages) - 1 else None
            if i < len(ids):
                await self._edit(int(ids[i]), page, markup, priority)
            else:
                ids.append(await self._send(page, markup, Priority.TEXT))
        ref = MessageRef(ids[0], tuple(ids[1:]))
        self._note(write, ref, text)
        return ref

    async def set_status(self, status: str) -> None:
        if status:
            if self._typing is None or self._typing.done():
                self._typing = asyncio.create_task(self._keep_typing(), name="telegram-typing")
        elif self._typing is not None:
            self._typing.cancel()
            self._typing = None

    async def send_file(self, name: str, data: bytes, mime: str, caption: str = "") -> MessageRef | None:
        place = self.place
        reply = ReplyParameters(place.reply_to, allow_sending_without_reply=True) if place.reply_to else None
        try:
            message = await call(
                self._budget(),
                self.budgets.bot,
                lambda: self.bot.send_document(
                    place.chat_id,
                    InputFile(data, filename=name),
                    caption=caption[:CAPTION_LIMIT] or None,
                    message_thread_id=place.thread_id,
                    reply_parameters=reply,
                ),
                "sendDocument",
                Priority.TEXT,
            )
        except BadRequest as exc:  # too big, a type refused…: the caller shows the content as text
            raise WriteFailed(f"sendDocument: {exc.message}") from exc
        assert message is not None
        return MessageRef(str(message.message_id))

    def _drafts_allowed(self) -> bool:
        channel = self.channel
        return channel.drafts and self.place.private and self.place.chat_id not in channel.drafts_refused

    async def open_stream(self, turn_id: int) -> NativeStream | None:
        if not self._drafts_allowed():
            return None
        stream = self._drafts.get(turn_id)
        if stream is None or stream.used:  # else: the turn's steps already show a draft
            stream = self._drafts[turn_id] = DraftStream(self, turn_id)
        stream.used = True
        return stream

    # ---- tool steps: a line under the answer -------------------------------------------
    async def show_steps(self, turn_id: int, steps: Sequence[Step]) -> bool:
        if turn_id in self._finished:
            return True
        line = steps_line(steps)
        if self._lines.get(turn_id) == line:
            return True
        self._lines[turn_id] = line
        try:
            if self._drafts_allowed():
                stream = self._drafts.get(turn_id)
                if stream is None:
                    stream = self._drafts[turn_id] = DraftStream(self, turn_id)
                return await stream.redraw()
            # A chat's messages allow about one write a second, so there is never spare capacity
            # for a cosmetic call: the line takes a slot only when one is free now (never a
            # wait) and at the edit's priority, below every text and final write. While a tool
            # runs the model writes nothing, so no answer text is waiting for that slot.
            if not (self._budget().has_room() and self.budgets.bot.has_room()):
                return True  # the answer's next write carries the line
            answer = self._answers.get(turn_id)
            if answer is not None:
                message_id = int(answer[0].id)
                markup = self._shown.get(message_id, (None, None, None))[2]  # keep its Stop button
                await self._edit(message_id, render.plain(self._join(answer[1], line)), markup, Priority.EDIT)
            elif (waiting := self._line_only.get(turn_id)) is not None:
                await self._edit(int(waiting.id), render.plain(line), None, Priority.EDIT)
            else:
                self._line_only[turn_id] = MessageRef(await self._send(render.plain(line), None, Priority.EDIT))
        except (Dropped, RateLimited):
            pass  # no room now: the next step, or the answer's next write, carries the line
        except TelegramError as exc:
            log.info("telegram: tool steps not shown: %s", exc)
        return True

    @staticmethod
    def _join(text: str, line: str) -> str:
        return f"{text.rstrip()}\n\n{line}" if text.strip() else line

    def _with_line(self, text: str, write: Write) -> str:
        """Non-final writes of a turn carry its steps line; the final write drops it."""
        line = self._lines.get(write.turn_id, "") if write.turn_id and not write.final else ""
        return self._join(text, line) if line else text

    def _note(self, write: Write, ref: MessageRef | None, text: str) -> None:
        if not write.turn_id:
            return
        if write.final:
            self._finished.add(write.turn_id)
            self._lines.pop(write.turn_id, None)
            self._answers.pop(write.turn_id, None)
        elif ref is not None and write.turn_id not in self._answers:
            self._answers[write.turn_id] = (ref, text)
        elif ref is not None and self._answers[write.turn_id][0].id == ref.id:
            self._answers[write.turn_id] = (ref, text)

    # ---- helpers -----------------------------------------------------------------------
    @staticmethod
    def _render(text: str, write: Write) -> list[render.Rendered]:
        if write.final:
            return render.markdown(text, reasoning=write.reasoning)
        return [render.plain(text)]

    def _budget(self):  # noqa: ANN202
        return self.budgets.messages(self.place.chat_id, group=not self.place.private)

    def _reply(self) -> str | None:
        if self.place.reply_to is None:
            return None
        return json.dumps({"message_id": self.place.reply_to, "allow_sending_without_reply": True})

    async def _with_entities(
        self, page: render.Rendered, request: Callable[[list | None], Awaitable[T]], method: str, priority: Priority
    ) -> T | None:
        """``request(entities)`` within the chat's budgets; plain text if Telegram refuses them."""
        try:
            return await call(
                self._budget(), self.budgets.bot, lambda: request(list(page.entities) or None), method, priority
            )
        except BadRequest as exc:
            if not page.entities or not is_entity_error(exc):
                raise
            log.warning("telegram: entities refused (%s); writing plain text", exc.message)
            return await call(self._budget(), self.budgets.bot, lambda: request(None), method, priority)

    def _api(self, method: str, params: dict, entities: list | None) -> Awaitable[dict | bool]:
        """One Bot API call with plain parameters (``markup`` already JSON), answering its JSON."""
        if entities:
            params = {**params, "entities": entities}
        return self.bot.do_api_request(method, api_kwargs=params)

    async def _send(
        self, page: render.Rendered, markup: str | None, priority: Priority, audience: int | None = None
    ) -> str:
        """One message; shown to ``audience`` alone when that user is given and the bot can."""
        place = self.place
        params: dict = {"chat_id": place.chat_id, "text": page.text}
        if place.thread_id is not None:
            params["message_thread_id"] = place.thread_id
        if (reply := self._reply()) is not None:
            params["reply_parameters"] = reply
        if markup is not None:
            params["reply_markup"] = markup
        if audience is not None and self.channel.caps.ephemeral.usable:
            if (sent := await self._send_ephemeral(page, params, priority, audience)) is not None:
                return sent
        message = await self._with_entities(
            page, lambda entities: self._api("sendMessage", params, entities), "sendMessage", priority
        )
        assert isinstance(message, dict)
        message_id = int(message["message_id"])
        self._shown[message_id] = (page.text, page.entities, markup)
        return str(message_id)

    async def _send_ephemeral(
        self, page: render.Rendered, params: dict, priority: Priority, audience: int
    ) -> str | None:
        """``params`` sent as an ephemeral message to ``audience``; None when Telegram refused it."""
        capability = self.channel.caps.ephemeral
        asked = {**params, "ephemeral_message_parameters": rich.ephemeral_to(audience)}
        try:
            message = await self._with_entities(
                page, lambda entities: self._api("sendMessage", asked, entities), "sendMessage", priority
            )
        except BadRequest as exc:
            if rich.is_unsupported(exc):
                capability.refused(exc.message)
            else:  # this chat or this user: the next notice may still go to its reader alone
                log.info("telegram: ephemeral message refused (%s); replying in the chat", exc.message)
            return None
        assert isinstance(message, dict)
        if "ephemeral_message_id" not in message:
            # A server older than 10.2 ignores the parameter: the notice went out as a normal message.
            capability.refused("sent as a normal message")
            message_id = int(message["message_id"])
            self._shown[message_id] = (page.text, page.entities, params.get("reply_markup"))
            return str(message_id)
        capability.worked()
        return f"{EPHEMERAL}{message['ephemeral_message_id']}"

    # ---- rich messages -------------------------------------------------------------------
    def _rich_wanted(self, text: str, write: Write) -> bool:
        """A final answer that a rich message shows better: structure, copy variants (a choice
        among them), or more text than a formatted message takes. Notices stay short messages;
        shown reasoning keeps its expandable quote, which rich Markdown has no documented form for."""
        if not write.final or write.notice or write.reasoning or not self.channel.caps.rich.usable:
            return False
        found = rich.shape(text)
        return found.fits and (found.structured or _has_choice(write.controls) or utf16_len(text) > PAGE_UNITS)

    def _rich_refused(self, exc: TelegramError) -> None:
        if rich.is_unsupported(exc):
            self.channel.caps.rich.refused(exc.message)
        else:  # this answer (its Markdown, its size): the next one is tried again
            log.info("telegram: rich message refused (%s); sending a formatted message", exc.message)

    async def _post_rich(self, text: str, write: Write) -> MessageRef | None:
        place = self.place
        markup = keyboards.markup_json(write.controls)
        params: dict = {"chat_id": place.chat_id, "rich_message": rich.input_rich(text)}
        if place.thread_id is not None:
            params["message_thread_id"] = place.thread_id
        if (reply := self._reply()) is not None:
            params["reply_parameters"] = reply
        if markup is not None:
            params["reply_markup"] = markup
        try:
            message = await call(
                self._budget(),
                self.budgets.bot,
                lambda: self.bot.do_api_request("sendRichMessage", api_kwargs=params),
                "sendRichMessage",
                Priority.TEXT,
            )
        except (BadRequest, EndPointNotFound) as exc:
            self._rich_refused(exc)
            return None
        assert isinstance(message, dict)
        self.channel.caps.rich.worked()
        message_id = int(message["message_id"])
        self._shown[message_id] = (_RICH, text, markup)
        return MessageRef(str(message_id))

    async def _edit_rich(self, ref: MessageRef, text: str, write: Write) -> bool:
        """The streamed message becomes the rich answer; messages the plain text needed besides
        it are deleted (the rich message holds it all). False when Telegram refused it."""
        message_id = int(ref.id)
        markup = keyboards.markup_json(write.controls)
        shown = (_RICH, text, markup)
        if self._shown.get(message_id) != shown:
            params: dict = {
                "chat_id": self.place.chat_id,
                "message_id": message_id,
                "rich_message": rich.input_rich(text),
            }
            if markup is not None:
                params["reply_markup"] = markup
            try:
                await call(
                    self._budget(),
                    self.budgets.bot,
                    lambda: self.bot.do_api_request("editMessageText", api_kwargs=params),
                    "editMessageText",
                    Priority.FINAL,
                )
            except (BadRequest, EndPointNotFound) as exc:
                if "text is empty" in str(exc).lower():  # a server before 10.1 ignores rich_message
                    self.channel.caps.rich.refused(str(exc))
                else:
                    self._rich_refused(exc)
                return False
            self.channel.caps.rich.worked()
            self._shown[message_id] = shown
        for extra in ref.more:
            await self._delete(int(extra))
        return True

    async def _delete(self, message_id: int) -> None:
        try:
            await call(
                self._budget(),
                self.budgets.bot,
                lambda: self.bot.delete_message(self.place.chat_id, message_id),
                "deleteMessage",
                Priority.FINAL,
            )
        except (TelegramError, WriteFailed) as exc:  # it stays, showing the start of the same answer
            log.info("telegram: could not delete message %s: %s", message_id, exc)
        self._shown.pop(message_id, None)

    def _audience(self, write: Write) -> int | None:
        """The user a notice is for, in a shared chat (a private chat's notices are private anyway)."""
        if self.place.private or not write.audience.isdigit():
            return None
        return int(write.audience)

    async def _edit(self, message_id: int, page: render.Rendered, markup: str | None, priority: Priority) -> None:
        shown = (page.text, page.entities, markup)
        if self._shown.get(message_id) == shown:
            return  # never send the same edit twice
        params: dict = {"chat_id": self.place.chat_id, "message_id": message_id, "text": page.text}
        if markup is not None:
            params["reply_markup"] = markup
        await self._with_entities(
            page, lambda entities: self._api("editMessageText", params, entities), "editMessageText", priority
        )
        self._shown[message_id] = shown

    async def _keep_typing(self) -> None:
        while True:
            try:
                await call(
                    self.budgets.drafts(self.place.chat_id),
                    self.budgets.bot,
                    lambda: self.bot.send_chat_action(
                        self.place.chat_id, ChatAction.TYPING, message_thread_id=self.place.thread_id
                    ),
                    "sendChatAction",
                    Priority.COSMETIC,
                )
            except (Dropped, RateLimited):
                pass  # cosmetic: no room now (or a 429 paused the budget); never retried, next refresh
            except TelegramError as exc:
                log.info("telegram: typing action failed: %s", exc)
                return
            await asyncio.sleep(self.budgets.pacing.typing_refresh)


def _has_choice(controls: Controls) -> bool:
    """The controls offer a choice among numbered options: copy variants and their refinements."""
    return any(isinstance(row, Choice) for row in controls)


class DraftStream:
    """A private chat's answer streamed as a draft, finished with a normal message.

    Text with structure streams as a rich draft (``sendRichMessageDraft``) where the bot has
    them, and the answer ends as one rich message; once rich drafts worked, a draft's page may
    grow to a rich message's size instead of a formatted message's.

    If Telegram refuses drafts before anything was shown the core falls back to send-and-edit
    (StreamUnavailable); if it refuses later, the stream itself carries on as a sent message
    that it edits, so nothing shown is lost.
    """

    def __init__(self, surface: TelegramSurface, turn_id: int) -> None:
        self.surface = surface
        self.turn_id = turn_id
        self.draft_id = draft_id_for(turn_id)  # names the turn a user's stop ends
        self._rich = True  # False once Telegram refused one of this stream's rich drafts
        self.limits = self._limits()
        self._shown = False
        self._message: MessageRef | None = None  # set once drafts were refused mid-answer
        self.used = False  # the core's writer took it (tool steps may show a draft before that)
        self._text = ""  # the answer text the draft shows (its steps line is added to it)

    @property
    def ref(self) -> MessageRef | None:
        return self._message  # a draft leaves no message of its own

    def _limits(self) -> SurfaceLimits:
        capability = self.surface.channel.caps.rich
        size = rich.RICH_PAGE if self._rich and capability.state is rich.Support.YES else PAGE_UNITS
        return SurfaceLimits(max_chars=size, edit_interval=self.surface.budgets.pacing.draft, measure=utf16_len)

    async def _draw(self, shown: str, priority: Priority) -> None:
        """One draft: rich when the text has structure (or outgrew a formatted message) and the
        bot has rich drafts, else plain. Raises what a plain draft's refusal raises."""
        surface, place = self.surface, self.surface.place
        capability = surface.channel.caps.rich
        found = rich.shape(shown)
        if self._rich and capability.usable and found.fits and (found.structured or utf16_len(shown) > PAGE_UNITS):
            params: dict = {"chat_id": place.chat_id, "draft_id": self.draft_id, "rich_message": rich.input_rich(shown)}
            if surface.channel.stops.supported:  # the user's stop button, as on plain drafts
                params.update(STOP_KWARGS)
            if place.thread_id is not None:
                params["message_thread_id"] = place.thread_id
            try:
                await call(
                    surface.budgets.drafts(place.chat_id),
                    surface.budgets.bot,
                    lambda: surface.bot.do_api_request("sendRichMessageDraft", api_kwargs=params),
                    "sendRichMessageDraft",
                    priority,
                )
            except EndPointNotFound as exc:
                capability.refused(exc.message)
            except BadRequest as exc:  # half-written Markdown, or drafts refused: the plain draft says
                log.info("telegram: rich draft refused (%s); this answer streams plain", exc.message)
                self._rich = False
            else:
                capability.worked()
                self.limits = self._limits()
                return
            self.limits = self._limits()
        await call(
            surface.budgets.drafts(place.chat_id),
            surface.budgets.bot,
            lambda: send_draft(
                surface.bot,
                surface.channel.stops,
                place.chat_id,
                self.draft_id,
                render.plain(shown).text,
                place.thread_id,
            ),
            "sendMessageDraft",
            priority,
        )

    async def redraw(self) -> bool:
        """Show the turn's steps line under the text (cosmetic); False if drafts are refused."""
        if self._message is not None:
            return True  # the answer continues as a message: its next edit carries the line
        surface, place = self.surface, self.surface.place
        shown = surface._with_line(self._text, Write(self.turn_id))  # noqa: SLF001 - its own surface
        try:
            await self._draw(shown, Priority.COSMETIC)
        except BadRequest as exc:
            log.info("telegram: drafts refused in chat %s: %s", place.chat_id, exc.message)
            surface.channel.drafts_refused.add(place.chat_id)
            return self._shown
        self._shown = True
        return True

    async def update(self, text: str, write: Write) -> None:  # a draft carries no buttons
        self._text = text
        if self._message is not None:
            self._message = await self.surface.edit(self._message, text, Write(self.turn_id))
            return
        surface, place = self.surface, self.surface.place
        shown = surface._with_line(text, Write(self.turn_id))  # noqa: SLF001 - its own surface
        try:
            await self._draw(shown, Priority.EDIT if self._shown else Priority.TEXT)
        except BadRequest as exc:
            log.info("telegram: drafts refused in chat %s: %s", place.chat_id, exc.message)
            surface.channel.drafts_refused.add(place.chat_id)
            if not self._shown:
                raise StreamUnavailable(exc.message) from exc
            self._message = await surface.post(text, Write(self.turn_id))
        self._shown = True

    async def close(self, text: str, write: Write) -> MessageRef:
        if self._message is not None:
            return await self.surface.edit(self._message, text, write)
        return await self.surface.post(text, write)
