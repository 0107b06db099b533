"""The Feishu / Lark adapter: events in over the long connection (or the HTTP callback),
answers out as CardKit streaming cards, clicks back through ``card.action.trigger``.

Every event is handed to the inbox the moment it is read (its place in line, durable dedupe,
access before any download) and acknowledged right after: a message with ``receive`` (its
id is the dedupe key, so a message pushed again under any event id is answered once), a
button with ``click``, the bot added to or removed from a chat with ``membership``. Events
older than 30 minutes (what a reconnect can bring back) are dropped with a log line.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import aiohttp

from adapters.feishu import cards
from adapters.feishu.api import CREDENTIALS_REFUSED, FeishuApi, FeishuError, TooLarge
from adapters.feishu.budgets import FeishuBudgets
from adapters.feishu.connection import LongConnection
from adapters.feishu.normalise import Identity, Received, quoted, received
from adapters.feishu.settings import FeishuSettings
from adapters.feishu.surface import TICKS, FeishuOutlet, FeishuSurface, Place
from adapters.feishu.webhook import CallbackEndpoint
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
    RateLimited,
)

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

log = logging.getLogger(__name__)

PLATFORM = "feishu"
EVENTS_PATH = "/feishu/events"
SDK_LOGGER = "Lark"  # lark-oapi's logger (it adds a stdout handler of its own at import)
STALE_AFTER = 30 * 60  # seconds: older events (a reconnect can bring them) are dropped
TOAST_WAIT = 2.0  # seconds a card callback waits for the core's answer (Feishu waits 3)
NAMES_KEPT = 50_000
MB = 1024 * 1024
IMAGE_MAX = 10 * MB  # the gateway takes images up to 10 MB


class FeishuAdapter(Platform):
    name = PLATFORM
    settings: FeishuSettings

    def __init__(self, settings: FeishuSettings, inbox: Inbox) -> None:
        assert settings.app_secret is not None
        super().__init__(settings, inbox)
        self._secret = settings.app_secret.get_secret_value()
        self.scale = inbox.time_scale
        self.budgets = FeishuBudgets(self.scale, inbox.counters(f"feishu:{settings.app_id}"))
        self.me: Identity | None = None
        self.session: aiohttp.ClientSession | None = None
        self.api: FeishuApi | None = None
        self.outlet: FeishuOutlet | None = None
        self.connection: LongConnection | None = None
        self._endpoint: CallbackEndpoint | None = None
        self._task: asyncio.Task | None = None
        self._detail = "not started"
        self._names: dict[str, str] = {}
        self._names_refused = False

    # --- Platform ---
    def routes(self) -> list[BaseRoute]:
        if self.settings.connection != "webhook":
            return []
        from starlette.routing import Route

        return [Route(EVENTS_PATH, self._http_endpoint, methods=["POST"])]

    async def start(self) -> None:
        _route_sdk_logs()
        settings = self.settings
        self.session = aiohttp.ClientSession()
        self.api = FeishuApi(
            base_url=settings.base_url,
            app_id=settings.app_id,
            app_secret=self._secret,
            session=self.session,
            budgets=self.budgets,
            scale=self.scale,
        )
        self.outlet = FeishuOutlet(
            self.api,
            edit_interval=self.scale,
            stream_interval=settings.stream_interval * self.scale,
            stream_max_age=settings.stream_max_age * self.scale,
            text_limit=settings.card_text_bytes,
            cardkit=settings.cardkit,
            tick_rate=TICKS / self.scale,
        )
        if settings.connection == "webhook":
            self._endpoint = CallbackEndpoint(
                verification_token=settings.verification_token.get_secret_value()
                if settings.verification_token
                else "",
                encrypt_key=settings.encrypt_key.get_secret_value() if settings.encrypt_key else "",
                max_body=settings.max_body,
                handle=self._on_event,
                ready=lambda: self.me is not None,
            )
        else:
            self.connection = LongConnection(
                base_url=settings.base_url,
                app_id=settings.app_id,
                app_secret=self._secret,
                session=self.session,
                handle=self._on_event,
                scale=self.scale,
            )
        self.inbox.attach(self)  # answers can be written as soon as the API answers
        self._task = asyncio.create_task(self._run(), name="feishu")

    async def _run(self) -> None:
        """Who the bot is (how its @mentions are told apart), then the long connection; each
        retried with backoff, never raised out of here."""
        await self._identify()
        if self.connection is not None:
            await self.connection.run()
        else:
            log.info("feishu: taking events at %s as %s", EVENTS_PATH, self.me.name if self.me else "?")

    async def _identify(self) -> None:
        assert self.api is not None
        failures = 0
        while self.me is None:
            try:
                open_id, name = await self.api.bot_identity()
                self.me = Identity(open_id, name)
                self._detail = ""
                log.info("feishu: connected to %s as %s", self.settings.base_url, name)
                return
            except FeishuError as exc:
                failures += 1
                if exc.code in CREDENTIALS_REFUSED:
                    self._detail = f"Feishu refused FEISHU_APP_ID / FEISHU_APP_SECRET ({exc})"
                    log.error("feishu: %s; trying again in 5 minutes", self._detail)
                    await asyncio.sleep(300 * self.scale)
                    continue
                self._detail = f"cannot reach Feishu: {exc}"
            except (aiohttp.ClientError, OSError, TimeoutError, RateLimited) as exc:
                failures += 1
                self._detail = f"cannot reach Feishu: {type(exc).__name__}"
            except Exception:  # whatever it is, the process stays up and tries again
                failures += 1
                self._detail = "cannot identify the bot (see the log)"
                log.exception("feishu: identifying the bot failed")
            log.warning("feishu: %s (attempt %d)", self._detail, failures)
            await asyncio.sleep(min(120.0, 2.0 ** min(failures, 7)) * self.scale * random.uniform(0.5, 1.0))

    def health(self) -> Health:
        if self.me is None:
            return Health(False, self._detail or "identifying the bot")
        if self.connection is not None:
            state = self.connection.state
            return Health(state.connected, state.detail)
        return Health(self._endpoint is not None, f"HTTP callback at {EVENTS_PATH}")

    async def pause(self) -> None:
        """Take no new events (shutdown): the long connection closes, so Feishu gives the next
        ones to the app's other connections; answers in flight keep writing."""
        if self.connection is not None:
            await self.connection.close()
        self._endpoint = None

    async def stop(self) -> None:
        await self.pause()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.api is not None:
            self.api.close()
        if self.session is not None:
            await self.session.close()
            self.session = None

    # --- the core's view ---
    def surface_for(self, key: ConversationKey, *, reply_to: str = "", user: str = "") -> FeishuSurface | None:
        if self.outlet is None or key.platform != PLATFORM:
            return None
        # In a thread, answer its root in the thread; elsewhere quote the message asked. The key
        # does not tell a private chat from a group's main chat: notices for one person go to
        # everyone here (a repair, a message another process took in).
        place = Place(key.chat, key.thread or reply_to, bool(key.thread), key.thread)
        return FeishuSurface(self.outlet, place)

    # --- transport ---
    async def _http_endpoint(self, request: Request) -> Response:
        from starlette.responses import PlainTextResponse

        endpoint = self._endpoint
        if endpoint is None:
            return PlainTextResponse("not taking events", status_code=503)
        return await endpoint.handle_request(request)

    def _on_event(self, event: dict) -> Awaitable[dict | None] | None:
        """Called for every event as it is read (no await before the hand-in); returns what the
        acknowledgement must carry, when it carries anything (a card callback's toast)."""
        header, body = _dict(event.get("header")), _dict(event.get("event"))
        kind = header.get("event_type") or body.get("type")
        if _stale(header):
            log.info(
                "feishu: dropped %s event %s from %s (older than 30 minutes)",
                kind,
                header.get("event_id"),
                header.get("create_time"),
            )
            return None
        tenant = str(header.get("tenant_key") or body.get("tenant_key") or "")
        if kind == "im.message.receive_v1":
            self._on_message(tenant, body)
        elif kind == "card.action.trigger":
            return self._on_card_action(tenant, header, body)
        elif kind in ("im.chat.member.bot.added_v1", "im.chat.member.bot.deleted_v1") and body.get("chat_id"):
            change = Membership.JOINED if kind.endswith("added_v1") else Membership.LEFT
            self.inbox.membership(tenant, str(body["chat_id"]), change, event_id=str(header.get("event_id") or ""))
        return None

    # --- messages ---
    def _on_message(self, tenant: str, body: dict) -> None:
        me = self.me
        if me is None:
            return
        message = received(body, tenant, me, group_threads=self.settings.group_threads)
        if message is None:
            return
        key = ConversationKey(PLATFORM, tenant, message.chat_id, message.thread)
        surface = self._surface(message)
        arrival = Arrival(
            key,
            f"message:{message.message_id}",
            Author(message.sender, message.sender),
            surface,
            addressed=message.addressed,
        )
        self.inbox.receive(arrival, lambda: self._build(message, key, surface))

    def _surface(self, message: Received) -> FeishuSurface:
        assert self.outlet is not None
        # Asked in an ordinary group's main chat (a mention that opens a thread of its own too):
        # a notice for the asker alone may be a card only they see, where they asked.
        main_chat = not message.private and not message.threaded
        if message.in_thread:  # a thread: answer in it, replying to the message asked
            place = Place(message.chat_id, message.message_id, True, message.thread, main_chat=main_chat)
        elif message.private:  # a private chat: just answer
            place = Place(message.chat_id)
        else:  # a group's main chat: quote the question
            place = Place(message.chat_id, message.message_id, False, message.thread, main_chat=True)
        return FeishuSurface(self.outlet, place)

    async def _build(
        self, message: Received, key: ConversationKey, surface: FeishuSurface
    ) -> IncomingMessage | Notice | None:
        """After access was granted: the files, the author's name, and for a command that works
        on a message, sent as a reply, the text it replies to."""
        attachments, notes = await self._fetch(message)
        notes = [*message.notes, *notes]
        if not message.text and not attachments:
            if notes and message.addressed:
                return Notice(" ".join(dict.fromkeys(notes)))  # said in line, after earlier answers
            return None
        return IncomingMessage(
            key=key,
            author=Author(message.sender, await self._name(message.sender)),
            text=message.text,
            message_id=message.message_id,
            attachments=attachments,
            addressed=message.addressed,
            group=not message.private,
            reply_to=message.parent_id or None,
            quoted=await self._quoted(message),
            notes=list(dict.fromkeys(notes)),
        )

    async def _quoted(self, message: Received) -> str:
        """The text of the message ``message`` replies to, read back from Feishu: its event
        names only the parent's id. Fetched only for a command that works on a message (the
        core's ``on_message``), so an ordinary reply costs no call; "" when it cannot be read."""
        if not message.parent_id or not self._works_on_a_message(message.text) or self.me is None:
            return ""
        assert self.api is not None
        try:
            parent = await self.api.message(message.parent_id)
        except (FeishuError, RateLimited, aiohttp.ClientError, TimeoutError) as exc:
            log.info("feishu: could not read %s, which %s replies to: %s", message.parent_id, message.message_id, exc)
            return ""
        if parent.deleted:
            log.info("feishu: %s, which %s replies to, was recalled", message.parent_id, message.message_id)
            return ""
        return quoted(parent.kind, parent.content, parent.mentions, self.me)

    def _works_on_a_message(self, text: str) -> bool:
        """Whether ``text`` starts with a registered command that takes a picked message's text
        (only its first word is looked at: the core parses the command itself)."""
        words = text.split(maxsplit=1)
        if not words or not words[0].startswith("/"):
            return False
        name = words[0][1:].split("@", 1)[0].lower()
        return any(info.name == name and info.on_message for info in self.inbox.commands)

    async def _fetch(self, message: Received) -> tuple[list[Attachment], list[str]]:
        assert self.api is not None
        attachments: list[Attachment] = []
        notes: list[str] = []
        for ref in message.files:
            limit = (
                min(IMAGE_MAX, self.settings.max_file_mb * MB)
                if ref.kind == "image"
                else self.settings.max_file_mb * MB
            )
            try:
                got = await self.api.download(message.message_id, ref.key, ref.kind, limit)
            except TooLarge:
                notes.append(f"“{ref.name}” is over {limit // MB} MB, so I didn't read it.")
                continue
            except (FeishuError, RateLimited, aiohttp.ClientError, TimeoutError) as exc:
                log.info("feishu: could not download %s of %s: %s", ref.key, message.message_id, exc)
                notes.append(f"I couldn't download “{ref.name}” from Feishu.")
                continue
            mime = got.mime if got.mime and got.mime != "application/octet-stream" else ref.mime
            if ref.kind == "image" and not mime.startswith("image/"):
                mime = ref.mime
            attachments.append(Attachment(data=got.data, mime=mime, filename=got.filename or ref.name))
        return attachments, notes

    async def _name(self, open_id: str) -> str:
        """A display name for attribution in groups (cached; the open id when the app may not
        read contacts)."""
        name = self._names.get(open_id)
        if name is not None:
            return name
        name = open_id
        if not self._names_refused and self.api is not None:
            try:
                name = await self.api.user_name(open_id) or open_id
            except FeishuError as exc:
                if exc.code != 0:  # no permission, or no such API: stop asking
                    self._names_refused = True
                    log.info("feishu: no display names (%s); people are named by their open_id", exc)
            except RateLimited:
                pass
        if len(self._names) > NAMES_KEPT:
            self._names.clear()
        self._names[open_id] = name
        return name

    # --- clicks ---
    def _on_card_action(self, tenant: str, header: dict, body: dict) -> Awaitable[dict | None] | None:
        action, context, operator = _dict(body.get("action")), _dict(body.get("context")), _dict(body.get("operator"))
        pressed = cards.pressed(action)
        chat_id = context.get("open_chat_id")
        user = operator.get("open_id")
        if pressed is None or not chat_id or not user or self.outlet is None:
            log.info("feishu: ignored a card action %r", action.get("tag"))
            return None
        where = pressed.where
        key = ConversationKey(PLATFORM, tenant, str(chat_id), where.thread)
        # A card in a group's main chat quotes a message (one in a private chat quotes none).
        main_chat = bool(where.reply_to) and not where.thread
        place = Place(str(chat_id), where.reply_to, bool(where.thread), where.thread, main_chat=main_chat)
        surface = FeishuSurface(self.outlet, place)
        answered: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()

        async def acknowledge(ack: Ack) -> None:
            if not answered.done():
                answered.set_result(ack)

        task = self.inbox.click(
            Click(pressed.data, Author(str(user), str(user)), key),
            surface,
            acknowledge,
            event_id=f"card:{header.get('event_id') or context.get('open_message_id')}",
        )
        # Not scaled by PLATFORM_TIME_SCALE: Feishu's callback deadline is wall-clock time, and
        # how long the core takes to answer a click does not shrink with the rate windows.
        return _toast(answered, task, TOAST_WAIT)


async def _toast(answered: asyncio.Future[Ack], task: asyncio.Task, wait: float) -> dict | None:
    """The core's answer to a click as a toast, if it comes while Feishu still waits."""
    await asyncio.wait({answered, task}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
    if answered.done() and not answered.cancelled():
        return cards.toast(answered.result().text)
    return None


def _dict(value: object) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (events are read defensively)."""
    return value if isinstance(value, dict) else {}


def _stale(header: dict) -> bool:
    created = header.get("create_time")
    try:
        return time.time() - int(str(created)) / 1000 > STALE_AFTER if created else False
    except ValueError:
        return False


def _route_sdk_logs() -> None:
    """lark-oapi logs to stdout through a handler of its own: send its lines through ours
    (formats, redaction) instead."""
    logger = logging.getLogger(SDK_LOGGER)
    for handler in list(logger.handlers):
        if isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) is sys.stdout:
            logger.removeHandler(handler)
    logger.propagate = True
