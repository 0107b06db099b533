"""The Telegram adapter: a python-telegram-bot Application that translates updates for
the core and back.

Long polling by default; with TELEGRAM_WEBHOOK_URL the updates arrive on a route of the
project's ASGI app instead. Every update is handed to the inbox the moment it arrives
(its place in line, durable dedupe on the update id, access before any download), as a
message, a click or a membership change. Two kinds of update PTB 22.8 reads only partly come
in the same way: a user's stop on a streamed draft (``stops``: a click on the turn's Stop)
and a guest query from a chat the bot has not joined (``guest``: a message in a
conversation of its own, answered once).
"""

from __future__ import annotations

import asyncio
import logging

from starlette.routing import BaseRoute
from telegram import BotCommand, CallbackQuery, ChatMemberUpdated, Message, Update
from telegram.error import TelegramError
from telegram.ext import Application, ContextTypes, TypeHandler

from adapters.telegram import guest, media, stops
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
    sender_of,
    topic_of,
)
from adapters.telegram.settings import TelegramSettings
from adapters.telegram.surface import Place, TelegramOutlet, TelegramSurface
from adapters.telegram.updates import extra_of, parse_update, tolerant_bot
from adapters.telegram.webhook import path_of, webhook_route
from bot.platform import (
    Ack,
    Arrival,
    Attachment,
    Author,
    Click,
    ConversationKey,
    Health,
    Inbox,
    IncomingMessage,
    Membership,
    Notice,
    Platform,
    Priority,
    RateLimited,
    guarded,
    stop_press,
)

log = logging.getLogger(__name__)

PLATFORM = "telegram"
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member", guest.GUEST_UPDATE, stops.STOPPED_UPDATE]
GONE_STATUSES = {"left", "kicked"}  # ChatMember statuses that mean the bot is out of the chat
MAX_MENU = 100  # setMyCommands takes at most 100 commands


class TelegramAdapter(Platform):
    name = PLATFORM
    settings: TelegramSettings

    def __init__(self, settings: TelegramSettings, inbox: Inbox) -> None:
        assert settings.bot_token is not None
        super().__init__(settings, inbox)
        self.webhook_url = settings.webhook_url
        self.secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
        builder = (
            Application.builder()
            .bot(tolerant_bot(settings))  # token, URLs, pools; parses polled updates one by one
            .concurrent_updates(512)  # answers take long; the core orders each conversation
        )
        if self.webhook_url:
            builder = builder.updater(None)
        self.application = builder.build()
        self.bot = self.application.bot
        token = settings.bot_token.get_secret_value()
        self.budgets = Budgets(Pacing.from_settings(settings, inbox.time_scale), inbox.counters(token))
        self.channel = TelegramOutlet(self.bot, self.budgets, settings.drafts)
        self.albums = AlbumGatherer(settings.album_window)
        self.polling_timeout = settings.poll_timeout
        self.me: BotIdentity | None = None
        self._running = False
        self._poll_waiter: asyncio.Task | None = None  # another process polls: wait for our turn
        self.application.add_handler(TypeHandler(Update, self._on_update))
        self.application.add_error_handler(self._on_error)

    # ---- Platform ------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        if not self.webhook_url:
            return []
        return [webhook_route(path_of(self.webhook_url), self.secret, self._deliver)]

    async def start(self) -> None:
        await self.application.initialize()  # getMe
        self.me = BotIdentity(self.bot.id, self.bot.username)
        menu = [BotCommand(c.name, c.summary) for c in self.inbox.commands if c.menu][:MAX_MENU]
        try:
            await self.bot.set_my_commands(menu)
        except TelegramError as exc:
            log.warning("telegram: setMyCommands failed: %s", exc)
        await self.application.start()
        self._running = True
        self.inbox.attach(self)
        if self.webhook_url:
            await self.bot.set_webhook(self.webhook_url, secret_token=self.secret, allowed_updates=ALLOWED_UPDATES)
            log.info("telegram: webhook set")
        elif await self.inbox.lead(self._polling_lead):
            await self._start_polling()
        else:
            # Telegram answers a second poller with 409 Conflict: one process polls, the
            # others answer stored messages and take over polling if the poller stops.
            log.warning(
                "telegram: another process is polling for @%s; this one stays up and takes "
                "over polling if that process stops",
                self.me.username,
            )
            self._poll_waiter = asyncio.create_task(self._wait_to_poll(), name="telegram-wait-to-poll")

    @property
    def _polling_lead(self) -> str:
        assert self.me is not None
        return f"telegram-polling:{self.me.id}"

    async def _start_polling(self) -> None:
        assert self.application.updater is not None and self.me is not None
        await self.application.updater.start_polling(
            poll_interval=0, timeout=int(self.polling_timeout), allowed_updates=ALLOWED_UPDATES, bootstrap_retries=-1
        )
        log.info("telegram: long polling started as @%s", self.me.username)

    async def _wait_to_poll(self) -> None:
        # The lead is a database lock another process holds: nothing to wait on but time.
        while not await self.inbox.lead(self._polling_lead):  # noqa: ASYNC110
            await asyncio.sleep(self.inbox.poll_interval)
        log.info("telegram: the polling process is gone; polling here now")
        await self._start_polling()

    def health(self) -> Health:
        """Started, and polling when not on a webhook (for /readyz and the admin page)."""
        updater = self.application.updater
        if not self._running:
            return Health(False, "not started")
        if updater is None:
            return Health(True, "webhook")
        if updater.running:
            return Health(True, "long polling")
        if self._poll_waiter is not None and not self._poll_waiter.done():
            # Ready: it answers stored messages and takes over polling when the poller stops.
            return Health(True, "standing by: another process polls")
        return Health(False, "polling stopped")

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
    def surface_for(
        self, key: ConversationKey, *, reply_to: str = "", user: str = ""
    ) -> TelegramSurface | guest.GuestSurface | None:
        if self.me is None or key.platform != PLATFORM or key.workspace != str(self.me.id):
            return None
        chat_id = int(key.chat)
        if (query := guest.query_of(key)) is not None:  # an answer left unwritten: the query may still take it
            return guest.GuestSurface(self.bot, self.budgets, chat_id, query)
        private = chat_id > 0
        asked = int(reply_to) if reply_to.isdigit() and not private else None
        return TelegramSurface(self.channel, Place(chat_id, int(key.thread) if key.thread else None, asked, private))

    def surface(self, message: Message, *, reply_to: int | None = None) -> TelegramSurface:
        """Where to answer ``message``: its chat and topic, replying to it in groups."""
        private = is_private(message)
        return TelegramSurface(
            self.channel,
            Place(message.chat.id, topic_of(message), None if private else (reply_to or message.message_id), private),
        )

    # ---- transport ---------------------------------------------------------------------
    async def _deliver(self, data: dict) -> bool:
        if not self._running:
            return False
        update = parse_update(data, self.bot)  # None: logged and acknowledged, never retried
        if update is not None:
            # Handled now, not queued: the handler only hands the update to the inbox, so
            # when Telegram gets its 200 the update already holds its place in line.
            await self.application.process_update(update)
        return True

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram: error while handling an update", exc_info=context.error)

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Hand the update to the inbox at once: no await before it (updates reach this
        handler in the order Telegram sent them, and that is their order in line)."""
        me = self.me
        assert me is not None
        event_id = f"{me.id}:{update.update_id}"
        if update.message is not None:
            self._on_message(update.message, event_id)
        elif update.callback_query is not None:
            self._on_callback(update.callback_query, event_id)
        elif update.my_chat_member is not None:
            self._on_membership(update.my_chat_member, event_id)
        elif update.guest_message is not None:
            self._on_guest(update.guest_message, event_id)
        elif (stopped := extra_of(update, stops.STOPPED_UPDATE)) is not None:
            self._on_draft_stopped(stopped, event_id)

    # ---- messages ----------------------------------------------------------------------
    def _on_message(self, message: Message, event_id: str) -> None:
        me = self.me
        assert me is not None
        if ignore_sender(message) or message.chat.type == "channel":
            return
        command = command_of(me, message)
        if command is not None and not command[1]:
            return  # a command for another bot in the group
        sender = sender_of(message)
        arrival = Arrival(
            conversation_key(me, message), event_id, sender, self.surface(message), addressed=is_addressed(me, message)
        )
        self.inbox.receive(arrival, lambda: self._build(message))

    async def _build(self, message: Message) -> IncomingMessage | Notice | None:
        """After access was granted: gather an album, download its files."""
        items = await self.albums.gather(message) if message.media_group_id else [message]
        if items is None:
            return None  # a later item of an album: its first item's event takes it
        return await self._prepare(items)

    async def _prepare(self, items: list[Message]) -> IncomingMessage | Notice | None:
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
        if not text and not refs:
            if notes and addressed:  # said in line, after the answers to earlier messages
                return Notice(" ".join(dict.fromkeys(notes)))
            return None  # service messages, or unsupported content nobody asked about
        attachments: list[Attachment] = []
        for result in await asyncio.gather(*(media.download(self.bot, r) for r in refs)):
            if isinstance(result, str):
                notes.append(result)
            else:
                attachments.append(result)
        if not text and not attachments:
            return Notice(" ".join(dict.fromkeys(notes))) if addressed else None
        msg = normalise(me, lead, text=text, attachments=attachments, notes=list(dict.fromkeys(notes)))
        msg.addressed = addressed
        return msg

    # ---- guest queries -----------------------------------------------------------------
    def _on_guest(self, message: Message, event_id: str) -> None:
        """A guest query: through the door like a message, in a conversation of its own."""
        me = self.me
        assert me is not None
        problem = guest.problem_of(message)
        if problem is not None:
            log.warning("telegram: dropped a guest message: %s", problem)
            return
        assert message.guest_query_id is not None
        key = guest.guest_key(me, message)
        surface = guest.GuestSurface(self.bot, self.budgets, message.chat.id, message.guest_query_id)
        self.inbox.receive(Arrival(key, event_id, sender_of(message), surface), lambda: self._build_guest(message, key))

    async def _build_guest(self, message: Message, key: ConversationKey) -> IncomingMessage | Notice | None:
        built = await self._prepare([message])  # its files too; a guest query is never part of an album
        if isinstance(built, IncomingMessage):
            built.key, built.addressed, built.reply_to = key, True, None  # nothing in the chat is ours to reply to
        return built

    # ---- controls ----------------------------------------------------------------------
    def _on_draft_stopped(self, data: object, event_id: str) -> None:
        """The user tapped stop on a draft: the Stop button's click, for the turn the draft names.
        A stop for a turn that has ended is acknowledged by the core and changes nothing."""
        me = self.me
        assert me is not None
        stopped = stops.parse_stopped(data)
        if stopped is None or not stopped.turn_id:
            log.warning("telegram: dropped a %s update that names no draft of ours", stops.STOPPED_UPDATE)
            return
        thread = "" if stopped.thread_id is None else str(stopped.thread_id)
        key = ConversationKey(PLATFORM, str(me.id), str(stopped.chat_id), thread)
        surface = self.surface_for(key)
        assert surface is not None
        # Drafts exist only in private chats, where the chat is the user.
        click = Click(stop_press(stopped.turn_id).encode(), Author(str(stopped.chat_id), stopped.chat_name), key)
        self.inbox.click(click, surface, event_id=event_id)

    def _on_callback(self, query: CallbackQuery, event_id: str) -> None:
        me = self.me
        assert me is not None
        message = query.message if isinstance(query.message, Message) else None
        if message is None or not query.data:  # a message too old to be shown, or no data
            self.inbox.spawn(self._answer(query, Ack("This button no longer works.")), name="stale click")
            return
        click = Click(query.data, author_of(query.from_user), conversation_key(me, message))
        self.inbox.click(
            click, self._surface_for_answer(message), lambda ack: self._answer(query, ack), event_id=event_id
        )

    # ---- membership -------------------------------------------------------------------
    def _on_membership(self, change: ChatMemberUpdated, event_id: str) -> None:
        """The bot was removed from a chat (or blocked by a user), or added back."""
        me = self.me
        assert me is not None
        if change.new_chat_member.user.id != me.id:
            return
        gone = change.new_chat_member.status in GONE_STATUSES
        self.inbox.membership(
            str(me.id), str(change.chat.id), Membership.LEFT if gone else Membership.JOINED, event_id=event_id
        )

    def _surface_for_answer(self, answer: Message) -> TelegramSurface:
        """Write next to an earlier answer: same topic, replying to the same question."""
        asked = answer.reply_to_message
        question = asked.message_id if asked is not None and asked.forum_topic_created is None else None
        return self.surface(answer, reply_to=question)

    async def _answer(self, query: CallbackQuery, ack: Ack) -> None:
        """Answer a click (the user's spinner waits for it): bot-wide budget, ahead of edits.
        A 429 here is logged, not retried, and holds back no answer: the click's action has
        already happened, and the spinner ends by itself."""
        try:
            await guarded(
                (self.budgets.bot,),
                lambda: query.answer(ack.text),
                retry_after=retry_seconds,
                name=self.budgets.bot.name,
                method="answerCallbackQuery",
                priority=Priority.TEXT,
                pause=(),
            )
        except (TelegramError, RateLimited) as exc:  # too old, already answered, or a 429
            log.info("telegram: answerCallbackQuery failed: %s", exc)
