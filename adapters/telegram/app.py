"""The Telegram adapter: a python-telegram-bot Application wired to the ChatService.

Long polling by default; with TELEGRAM_WEBHOOK_URL the updates arrive on a route of the
project's ASGI app instead. Every update is claimed durably first, so one delivered twice
(a webhook retry, a restart before the offset was confirmed) is handled once.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute
from telegram import BotCommand, CallbackQuery, Message, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application, ApplicationHandlerStop, CallbackQueryHandler, ContextTypes, MessageHandler,
    TypeHandler, filters,
)

from adapters.telegram import keyboards, media
from adapters.telegram.albums import AlbumGatherer
from adapters.telegram.budgets import Budgets, Pacing
from adapters.telegram.normalise import (
    Me, author_of, clean_text, command_of, conversation_key, ignore_sender, is_addressed, is_private, normalise,
    topic_of,
)
from adapters.telegram.order import ArrivalOrder
from adapters.telegram.recovery import repair_recovered
from adapters.telegram.surface import Place, TelegramSurface
from adapters.telegram.updates import parse_update, tolerant_bot
from adapters.telegram.webhook import path_of, webhook_route
from bot.messages import Attachment, IncomingMessage
from bot.surface import Write

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.core.service import ChatService

log = logging.getLogger(__name__)

PLATFORM = "telegram"
ALLOWED_UPDATES = ["message", "callback_query"]
COMMANDS = [
    BotCommand("start", "What this bot does"),
    BotCommand("help", "Commands and tips"),
    BotCommand("new", "Start a fresh conversation here"),
    BotCommand("usage", "Tokens used in this conversation"),
    BotCommand("style", "List, set or clear a copywriting style"),
    BotCommand("copy", "Write copy variants: /copy <brief>"),
    BotCommand("stop", "Stop the answer being written"),
]
REFUSAL = ("Sorry, this bot is private and isn't available in this chat. "
           "Ask whoever runs it to add this chat to its allowlist.")
NOTHING_TO_STOP = "There is no answer being written here."


class TelegramAdapter:
    name = PLATFORM

    def __init__(self, settings: "Settings", service: "ChatService", *, pacing: Pacing | None = None,
                 polling_timeout: float = 10.0) -> None:
        assert settings.telegram_bot_token is not None
        self.settings = settings
        self.service = service
        self.webhook_url = settings.telegram_webhook_url
        self.secret = settings.telegram_webhook_secret.get_secret_value() if settings.telegram_webhook_secret else ""
        builder = (
            Application.builder()
            .bot(tolerant_bot(settings))  # token, URLs, pools; parses polled updates one by one
            .concurrent_updates(512)  # answers take long; the core orders each conversation
        )
        if self.webhook_url:
            builder = builder.updater(None)
        self.application = builder.build()
        self.bot = self.application.bot
        self.budgets = Budgets(pacing or Pacing.from_settings(settings))
        self.albums = AlbumGatherer(settings.telegram_album_window)
        self.allowed = settings.telegram_allowed
        self.polling_timeout = polling_timeout
        self.me: Me | None = None
        self._order = ArrivalOrder()
        self._drafts_refused: set[int] = set()
        self._streaming: dict[tuple[int, int | None], int] = {}  # (chat, topic) -> turn id
        self._background: set[asyncio.Task] = set()
        self._running = False

        app = self.application
        app.add_handler(TypeHandler(Update, self._claim), group=-1)
        app.add_handler(MessageHandler(filters.UpdateType.MESSAGE, self._on_message))
        app.add_handler(CallbackQueryHandler(self._on_callback))
        app.add_error_handler(self._on_error)

    # ---- PlatformAdapter ---------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        if not self.webhook_url:
            return []
        return [webhook_route(path_of(self.webhook_url), self.secret, self._deliver)]

    async def start(self) -> None:
        await self.application.initialize()  # getMe
        self.me = Me(self.bot.id, self.bot.username)
        try:
            await self.bot.set_my_commands(COMMANDS)
        except TelegramError as exc:
            log.warning("telegram: setMyCommands failed: %s", exc)
        await self.application.start()
        self._running = True
        self._spawn(repair_recovered(self, await self.service.take_recovered(PLATFORM)))
        if self.webhook_url:
            await self.bot.set_webhook(self.webhook_url, secret_token=self.secret,
                                       allowed_updates=ALLOWED_UPDATES)
            log.info("telegram: webhook set")
        else:
            assert self.application.updater is not None
            await self.application.updater.start_polling(
                poll_interval=0, timeout=int(self.polling_timeout), allowed_updates=ALLOWED_UPDATES,
                bootstrap_retries=-1)
            log.info("telegram: long polling started as @%s", self.me.username)

    async def stop(self) -> None:
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()
        self._running = False
        if self._background:
            await asyncio.wait(self._background, timeout=30)
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()

    # ---- plumbing ----------------------------------------------------------------------
    def _spawn(self, coro) -> None:  # noqa: ANN001
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _deliver(self, data: dict) -> bool:
        if not self._running:
            return False
        update = parse_update(data, self.bot)  # None: logged and acknowledged, never retried
        if update is not None:
            await self.application.update_queue.put(update)
        return True

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram: error while handling an update", exc_info=context.error)

    async def _claim(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert self.me is not None
        if not await self.service.claim_event(PLATFORM, f"{self.me.id}:{update.update_id}"):
            log.info("telegram: update %s already handled", update.update_id)
            raise ApplicationHandlerStop

    def is_allowed(self, chat_id: int, user_id: int | None) -> bool:
        if not self.allowed:
            return True
        return str(chat_id) in self.allowed or (user_id is not None and str(user_id) in self.allowed)

    def surface(self, message: Message, *, reply_to: int | None = None) -> TelegramSurface:
        """Where to answer ``message``: its chat and topic, replying to it in groups."""
        private = is_private(message)
        place = Place(message.chat.id, topic_of(message),
                      None if private else (reply_to or message.message_id), private)
        return self.surface_at(place)

    def surface_at(self, place: Place) -> TelegramSurface:
        drafts = self.settings.telegram_drafts and place.chat_id not in self._drafts_refused

        def streaming(turn_id: int, active: bool) -> None:
            spot = (place.chat_id, place.thread_id)
            if active:
                self._streaming[spot] = turn_id
            elif self._streaming.get(spot) == turn_id:
                del self._streaming[spot]

        return TelegramSurface(self.bot, place, self.budgets, drafts=drafts,
                               refuse_drafts=self._drafts_refused.add, on_streaming=streaming)

    # ---- messages ----------------------------------------------------------------------
    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        me = self.me
        if message is None or me is None or ignore_sender(message):
            return
        if message.chat.type == "channel":
            return
        command = command_of(me, message)
        if command is not None and not command[1]:
            return  # a command for another bot in the group
        if not self.is_allowed(message.chat.id, message.from_user.id):
            if is_addressed(me, message):
                await self._refuse_once(message)
            return
        ticket = self._order.ticket(conversation_key(me, message))
        try:
            if message.media_group_id:
                items = await self.albums.gather(message)
                if items is None:
                    ticket.cancel()
                    return
            else:
                items = [message]
            if command is not None and command[0] == "/stop":
                ticket.cancel()
                await self._stop_command(message)
                return
            prepared = await self._prepare(items)
        except BaseException:
            ticket.cancel()
            raise
        if prepared is None:
            ticket.cancel()
            return
        msg, surface = prepared
        await ticket.run(lambda: self.service.handle(msg, surface))

    async def _prepare(self, items: list[Message]) -> tuple[IncomingMessage, TelegramSurface] | None:
        me = self.me
        assert me is not None
        lead = next((m for m in items if m.text or m.caption), items[0])
        addressed = any(is_addressed(me, m) for m in items)
        text = clean_text(me, lead)
        refs, notes = [], []
        for item in items:
            item_refs, item_notes = media.files_of(item)
            refs.extend(item_refs)
            notes.extend(item_notes)
        surface = self.surface(lead)
        if not text and not refs:
            if notes and addressed:
                await self._say(surface, " ".join(dict.fromkeys(notes)))
            return None  # service messages, or unsupported content nobody asked about
        attachments: list[Attachment] = []
        for result in await asyncio.gather(*(media.download(self.bot, r) for r in refs)):
            if isinstance(result, str):
                notes.append(result)
            else:
                attachments.append(result)
        if not text and not attachments:
            if addressed:
                await self._say(surface, " ".join(dict.fromkeys(notes)))
            return None
        msg = normalise(me, lead, text=text, attachments=attachments, notes=list(dict.fromkeys(notes)))
        msg.addressed = addressed
        return msg, surface

    async def _say(self, surface: TelegramSurface, text: str) -> None:
        try:
            await surface.post(text, Write(0, final=True, notice=True))
        except Exception:  # noqa: BLE001 - a courtesy reply must not break the handler
            log.warning("telegram: could not send a notice", exc_info=True)

    async def _refuse_once(self, message: Message) -> None:
        if await self.service.claim_event(PLATFORM, f"refused:{message.chat.id}"):
            await self._say(self.surface(message), REFUSAL)

    async def _stop_command(self, message: Message) -> None:
        turn_id = self._streaming.get((message.chat.id, topic_of(message)))
        if turn_id is None or not await self.service.stop(turn_id):
            await self._say(self.surface(message), NOTHING_TO_STOP)

    # ---- buttons -----------------------------------------------------------------------
    async def _on_callback(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        press = keyboards.parse(query.data)
        message = query.message if isinstance(query.message, Message) else None
        if press is None or message is None:
            await self._answer(query, "This button no longer works.")
            return
        if not self.is_allowed(message.chat.id, query.from_user.id):
            await self._answer(query, "Not available in this chat.")
            return
        if press.action == keyboards.STOP:
            stopped = await self.service.stop(press.turn_id)
            await self._answer(query, "Stopping…" if stopped else "This answer is already finished.")
        elif press.action == keyboards.FEEDBACK:
            value = 1 if press.args[:1] == ("1",) else -1
            await self.service.feedback(press.turn_id, str(query.from_user.id), value)
            await self._answer(query, "Thanks for the feedback!")
        elif press.action == keyboards.REGENERATE:
            await self._answer(query, "Writing a new answer…")
            await self.service.regenerate(press.turn_id, self._surface_for_answer(message))
        elif press.action == keyboards.REFINE and len(press.args) == 2 and press.args[0].isdigit():
            await self._answer(query, "On it…")
            await self.service.refine(press.turn_id, int(press.args[0]), press.args[1],
                                      self._surface_for_answer(message), author=author_of(query.from_user))
        else:
            await self._answer(query, "This button no longer works.")

    def _surface_for_answer(self, answer: Message) -> TelegramSurface:
        """Write next to an earlier answer: same topic, replying to the same question."""
        asked = answer.reply_to_message
        question = asked.message_id if asked is not None and asked.forum_topic_created is None else None
        private = is_private(answer)
        return self.surface_at(Place(answer.chat.id, topic_of(answer),
                                     None if private else (question or answer.message_id), private))

    async def _answer(self, query: CallbackQuery, text: str) -> None:
        await self.budgets.bot.acquire()
        try:
            await query.answer(text)
        except TelegramError as exc:  # too old, or already answered
            log.info("telegram: answerCallbackQuery failed: %s", exc)
