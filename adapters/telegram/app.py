"""The Telegram adapter: a python-telegram-bot Application that translates updates for
the core and back.

Long polling by default; with TELEGRAM_WEBHOOK_URL the updates arrive on a route of the
project's ASGI app instead. Each update takes its place in its conversation's line the
moment it arrives (``ChatService.arrive``), is claimed durably (one delivered twice — a
webhook retry, a restart before the offset was confirmed — is handled once), and becomes
an ``IncomingMessage`` or an ``Action`` for the core.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute
from telegram import BotCommand, CallbackQuery, ChatMemberUpdated, Message, Update
from telegram.error import TelegramError
from telegram.ext import Application, ContextTypes, TypeHandler

from adapters.telegram import media
from adapters.telegram.albums import AlbumGatherer
from adapters.telegram.budgets import Budgets, Pacing
from adapters.telegram.calls import retry_seconds
from adapters.telegram.normalise import (
    BotIdentity,
    author_of,
    clean_text,
    command_of,
    conversation_key,
    ignore_sender,
    is_addressed,
    is_private,
    normalise,
    topic_of,
)
from adapters.telegram.surface import Place, TelegramOutlet, TelegramSurface
from adapters.telegram.updates import parse_update, tolerant_bot
from adapters.telegram.webhook import path_of, webhook_route
from bot.core.order import Ticket
from bot.platform.controls import Action, Press
from bot.platform.messages import Attachment, ConversationKey, IncomingMessage
from bot.platform.surface import RateLimited, Write
from bot.ratelimits.budgets import Priority, guarded
from bot.ratelimits.counters import counters_for

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.core.service import ChatService

log = logging.getLogger(__name__)

PLATFORM = "telegram"
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]
GONE_STATUSES = {"left", "kicked"}  # ChatMember statuses that mean the bot is out of the chat
COMMANDS = [
    BotCommand("start", "What this bot does"),
    BotCommand("help", "Commands and tips"),
    BotCommand("new", "Start a fresh conversation here"),
    BotCommand("usage", "Tokens used in this conversation"),
    BotCommand("style", "List, set or clear a copywriting style"),
    BotCommand("copy", "Write copy variants: /copy <brief>"),
    BotCommand("stop", "Stop the answer being written"),
]


class TelegramAdapter:
    name = PLATFORM

    def __init__(self, settings: Settings, service: ChatService, *, polling_timeout: float = 10.0) -> None:
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
        token = settings.telegram_bot_token.get_secret_value()
        self.budgets = Budgets(Pacing.from_settings(settings), counters_for(settings.redis_url, token))
        self.channel = TelegramOutlet(self.bot, self.budgets, settings.telegram_drafts)
        self.albums = AlbumGatherer(settings.telegram_album_window)
        self.polling_timeout = polling_timeout
        self.me: BotIdentity | None = None
        self._running = False
        self._poll_waiter: asyncio.Task | None = None  # another process polls: wait for our turn
        self.application.add_handler(TypeHandler(Update, self._on_update))
        self.application.add_error_handler(self._on_error)

    # ---- PlatformAdapter ---------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        if not self.webhook_url:
            return []
        return [webhook_route(path_of(self.webhook_url), self.secret, self._deliver)]

    async def start(self) -> None:
        await self.application.initialize()  # getMe
        self.me = BotIdentity(self.bot.id, self.bot.username)
        try:
            await self.bot.set_my_commands(COMMANDS)
        except TelegramError as exc:
            log.warning("telegram: setMyCommands failed: %s", exc)
        await self.application.start()
        self._running = True
        self.service.attach(self)
        if self.webhook_url:
            await self.bot.set_webhook(self.webhook_url, secret_token=self.secret,
                                       allowed_updates=ALLOWED_UPDATES)
            log.info("telegram: webhook set")
        elif await self.service.lead(self._polling_lead):
            await self._start_polling()
        else:
            # Telegram answers a second poller with 409 Conflict: one process polls, the
            # others answer stored messages and take over polling if the poller stops.
            log.warning("telegram: another process is polling for @%s; this one stays up and takes "
                        "over polling if that process stops", self.me.username)
            self._poll_waiter = asyncio.create_task(self._wait_to_poll(), name="telegram-wait-to-poll")

    @property
    def _polling_lead(self) -> str:
        assert self.me is not None
        return f"telegram-polling:{self.me.id}"

    async def _start_polling(self) -> None:
        assert self.application.updater is not None and self.me is not None
        await self.application.updater.start_polling(
            poll_interval=0, timeout=int(self.polling_timeout), allowed_updates=ALLOWED_UPDATES,
            bootstrap_retries=-1)
        log.info("telegram: long polling started as @%s", self.me.username)

    async def _wait_to_poll(self) -> None:
        while not await self.service.lead(self._polling_lead):
            await asyncio.sleep(self.settings.sweep_interval)
        log.info("telegram: the polling process is gone; polling here now")
        await self._start_polling()

    @property
    def connected(self) -> bool:
        """Started, and polling when not on a webhook (for /readyz)."""
        updater = self.application.updater
        return self._running and (updater is None or updater.running)

    async def pause(self) -> None:
        """Stop long polling (shutdown): updates already taken are still answered."""
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()

    async def stop(self) -> None:
        if self._poll_waiter is not None:
            self._poll_waiter.cancel()
            await asyncio.gather(self._poll_waiter, return_exceptions=True)
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()
        self._running = False
        if self.application.running:
            await self.application.stop()  # waits for the updates being handled
        await self.application.shutdown()

    # ---- Platform (for the core) -------------------------------------------------------
    def surface_for(self, key: ConversationKey, *, reply_to: str = "", user: str = "") -> TelegramSurface | None:
        if self.me is None or key.platform != PLATFORM or key.workspace != str(self.me.id):
            return None
        chat_id = int(key.chat)
        private = chat_id > 0
        asked = int(reply_to) if reply_to.isdigit() and not private else None
        return TelegramSurface(self.channel, Place(chat_id, int(key.thread) if key.thread else None, asked, private))

    def surface(self, message: Message, *, reply_to: int | None = None) -> TelegramSurface:
        """Where to answer ``message``: its chat and topic, replying to it in groups."""
        private = is_private(message)
        return TelegramSurface(self.channel, Place(message.chat.id, topic_of(message),
                                                   None if private else (reply_to or message.message_id), private))

    # ---- transport ---------------------------------------------------------------------
    async def _deliver(self, data: dict) -> bool:
        if not self._running:
            return False
        update = parse_update(data, self.bot)  # None: logged and acknowledged, never retried
        if update is not None:
            await self.application.update_queue.put(update)
        return True

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram: error while handling an update", exc_info=context.error)

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        me = self.me
        assert me is not None
        message = update.message
        # The place in line is taken before the first await: updates reach this handler
        # in the order Telegram sent them.
        ticket = self.service.arrive(conversation_key(me, message)) if message is not None else None
        try:
            if not await self.service.claim_event(PLATFORM, f"{me.id}:{update.update_id}"):
                log.info("telegram: update %s already handled", update.update_id)
            elif message is not None and ticket is not None:
                handed, ticket = ticket, None
                await self._on_message(message, handed)
            elif update.callback_query is not None:
                await self._on_callback(update.callback_query)
            elif update.my_chat_member is not None:
                await self._on_membership(update.my_chat_member)
        finally:
            if ticket is not None:
                ticket.drop()

    # ---- messages ----------------------------------------------------------------------
    async def _on_message(self, message: Message, ticket: Ticket) -> None:
        """Hand ``message`` to the core with its ticket, or drop the ticket."""
        try:
            handed = await self._translate(message, ticket)
        except BaseException:
            ticket.drop()
            raise
        if not handed:
            ticket.drop()

    async def _translate(self, message: Message, ticket: Ticket) -> bool:
        me = self.me
        assert me is not None
        if ignore_sender(message) or message.chat.type == "channel":
            return False
        command = command_of(me, message)
        if command is not None and not command[1]:
            return False  # a command for another bot in the group
        # The core's access rules (allowlist, blocked users), asked before any download.
        user = str(message.from_user.id) if message.from_user else ""
        decision = await self.service.ops.access.decide(PLATFORM, str(me.id), str(message.chat.id), user,
                                                        addressed=is_addressed(me, message))
        if not decision.allowed:
            if decision.text:
                await self._say(self.surface(message), decision.text)
            return False
        items = await self.albums.gather(message) if message.media_group_id else [message]
        if items is None:
            return False  # a later item of an album: its first item's handler takes it
        prepared = await self._prepare(items)
        if prepared is None:
            return False
        msg, surface = prepared
        await self.service.handle(msg, surface, ticket=ticket)
        return True

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
        except Exception:
            log.warning("telegram: could not send a notice", exc_info=True)

    # ---- controls ----------------------------------------------------------------------
    async def _on_callback(self, query: CallbackQuery) -> None:
        me = self.me
        assert me is not None
        press = Press.decode(query.data)
        message = query.message if isinstance(query.message, Message) else None
        if press is None or message is None:
            await self._answer(query, "This button no longer works.")
            return
        action = Action(press, author_of(query.from_user), conversation_key(me, message))
        ack = await self.service.act(action, self._surface_for_answer(message))
        await self._answer(query, ack.text)

    # ---- membership -------------------------------------------------------------------
    async def _on_membership(self, change: ChatMemberUpdated) -> None:
        """The bot was removed from a chat (or blocked by a user), or added back."""
        me = self.me
        assert me is not None
        if change.new_chat_member.user.id != me.id:
            return
        chat = str(change.chat.id)
        if change.new_chat_member.status in GONE_STATUSES:
            await self.service.chat_left(PLATFORM, str(me.id), chat)
        else:
            await self.service.chat_joined(PLATFORM, str(me.id), chat)

    def _surface_for_answer(self, answer: Message) -> TelegramSurface:
        """Write next to an earlier answer: same topic, replying to the same question."""
        asked = answer.reply_to_message
        question = asked.message_id if asked is not None and asked.forum_topic_created is None else None
        return self.surface(answer, reply_to=question)

    async def _answer(self, query: CallbackQuery, text: str) -> None:
        """Answer a click (the user's spinner waits for it): bot-wide budget, ahead of edits.
        A 429 here is logged, not retried, and holds back no answer: the click's action has
        already happened, and the spinner ends by itself."""
        try:
            await guarded((self.budgets.bot,), lambda: query.answer(text), retry_after=retry_seconds,
                          name=self.budgets.bot.name, method="answerCallbackQuery", priority=Priority.TEXT,
                          pause=())
        except (TelegramError, RateLimited) as exc:  # too old, already answered, or a 429
            log.info("telegram: answerCallbackQuery failed: %s", exc)
