"""A protocol-faithful fake of the Telegram Bot API on 127.0.0.1 (aiohttp.web, port 0).

It answers what python-telegram-bot calls (getMe, getUpdates with real long polling,
sendMessage, editMessageText, sendMessageDraft, sendChatAction, sendDocument (multipart
upload; the file can be downloaded and sent back by a user), getFile and file downloads,
set/deleteWebhook, setMyCommands, answerCallbackQuery, …), validates like
Telegram (text length after entity parsing in UTF-16 units, entity bounds, "message is
not modified", "can't parse entities" for broken parse_mode text), enforces the flood
limits with 429 + ``parameters.retry_after``, and records every call with its time so a
test can check that no limit was broken.

Bot API 10.1–10.3 (rich and ephemeral messages; see "rich and ephemeral messages" below): off
by default, as on a server of Bot API 10.0 (what python-telegram-bot 22.8 knows), so a test
turns them on (``rich_messages``, ``ephemeral``).

Tests push updates with the helpers (``private_message``, ``group_message``,
``press_button``…) and read what the bot wrote from ``chats``/``calls``.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from aiohttp import web

TEXT_LIMIT = 4096
RICH_TEXT_LIMIT = 32_768  # characters of text in a rich message ("Rich Message Limits")
CAPTION_LIMIT = 1024
UPLOAD_LIMIT = 50 * 1024 * 1024  # what a bot may upload
FILE_DOWNLOAD_LIMIT = 20 * 1024 * 1024

# Calls that put or change a message in a chat: they count against the chat and group limits.
WRITE_METHODS = {
    "sendMessage",
    "editMessageText",
    "editMessageReplyMarkup",
    "sendPhoto",
    "sendDocument",
    "deleteMessage",
    "copyMessage",
    "forwardMessage",
    "sendRichMessage",
}
# Calls that share the per-chat draft budget.
DRAFT_METHODS = {"sendMessageDraft", "sendChatAction", "sendRichMessageDraft"}

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)

_INT_FIELDS = {
    "chat_id",
    "message_id",
    "draft_id",
    "message_thread_id",
    "offset",
    "limit",
    "timeout",
    "reply_to_message_id",
    "max_connections",
    "cache_time",
    "user_id",
}
_BOOL_FIELDS = {
    "disable_notification",
    "drop_pending_updates",
    "protect_content",
    "show_alert",
    "allow_sending_without_reply",
    "disable_web_page_preview",
}
_JSON_FIELDS = {
    "entities",
    "caption_entities",
    "reply_markup",
    "reply_parameters",
    "allowed_updates",
    "commands",
    "link_preview_options",
    "scope",
    "rich_message",
    "ephemeral_message_parameters",
}


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class Window:
    """At most ``count`` calls in any ``seconds``-long window."""

    count: int
    seconds: float


@dataclass(frozen=True)
class FakeLimits:
    chat: Window = Window(3, 3.0)  # ~1 message per second per chat, small bursts
    group: Window = Window(20, 60.0)  # 20 messages per minute in a group
    global_: Window = Window(30, 1.0)  # ~30 per second for the whole bot
    draft: tuple[Window, ...] = (Window(20, 5.0), Window(40, 30.0))  # per chat
    integer_retry_after: bool = True  # Telegram sends whole seconds
    # Token buckets instead of sliding windows: each window's count refills over its seconds,
    # but a bucket holds only a sixth of it (at least 1): a Telegram with smaller bursts.
    buckets: bool = False

    def scaled(self, factor: float) -> FakeLimits:
        """The same counts in windows ``factor`` times as long (tests shrink time)."""

        def s(w: Window) -> Window:
            return Window(w.count, w.seconds * factor)

        return replace(
            self,
            chat=s(self.chat),
            group=s(self.group),
            global_=s(self.global_),
            draft=tuple(s(w) for w in self.draft),
            integer_retry_after=False,
        )


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float  # time.monotonic() when it arrived
    status: int = 200
    description: str = ""
    injected: bool = False  # the failure was scripted by the test, not earned by the bot
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return value if isinstance(value, int) else None


@dataclass
class Injected:
    method: str
    status: int
    description: str
    retry_after: float | None = None
    chat_id: int | None = None
    times: int = 1


@dataclass
class StoredMessage:
    message_id: int
    chat_id: int
    from_bot: bool  # written by the bot under test (other bots' messages arrive as updates)
    text: str
    entities: list[dict] = field(default_factory=list)
    reply_markup: dict | None = None
    thread_id: int | None = None
    reply_to: int | None = None
    edits: int = 0
    raw: dict = field(default_factory=dict)
    document: dict | None = None  # a sent file: {"file_id", "file_name", "mime_type", "file_size", …}
    rich: dict | None = None  # a rich message: the InputRichMessage it was sent with (``text`` is its source)


EphemeralMode = Literal["ignored", "yes", "refused"]  # ignored: a server before Bot API 10.2


@dataclass
class Ephemeral:
    """An ephemeral message: in the chat, shown to ``receiver`` alone."""

    ephemeral_message_id: int
    chat_id: int
    receiver: int
    text: str
    entities: list[dict]
    reply_markup: dict | None
    thread_id: int | None
    reply_to: int | None
    rich: dict | None = None


def _rich_source(rich: dict) -> str:
    return rich.get("markdown") or rich.get("html") or json.dumps(rich.get("blocks"), ensure_ascii=False)


def _rich_received(rich: dict) -> dict:
    return {"blocks": [{"type": "paragraph", "text": _rich_source(rich)}]}


class TelegramError(Exception):
    def __init__(self, status: int, description: str, retry_after: float | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after


class FakeTelegram:
    """The fake server. ``async with FakeTelegram() as tg: tg.api_url …``."""

    def __init__(
        self,
        *,
        token: str = "123456:TEST-token_abc",
        bot_id: int = 123456,
        username: str = "copy_helper_bot",
        limits: FakeLimits | None = None,
        drafts_allowed: bool = True,
    ) -> None:
        self.token = token
        self.bot_user = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Copy Helper",
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.limits = limits or FakeLimits()
        self.drafts_allowed = drafts_allowed
        self.download_delay = 0.0  # seconds every file download takes (a slow network)
        self.calls: list[Call] = []
        self.chats: dict[int, dict] = {}
        self.messages: dict[int, dict[int, StoredMessage]] = defaultdict(dict)
        self.drafts: dict[tuple[int, int], str] = {}  # (chat, draft_id) -> latest draft text
        self.commands: list[dict] = []
        self.webhook: dict[str, Any] = {}
        self.files: dict[str, tuple[bytes, int, str]] = {}  # file_id -> (data, size, path)
        self._next_message_id: dict[int, int] = defaultdict(lambda: 1)
        self._next_update_id = 1000
        self._next_file = 1
        self._updates: list[dict] = []
        self.pushed: list[int] = []  # ids of the updates queued for getUpdates, ever
        # Ids of the updates the bot under test began to handle (tests.telegram_harness.watch).
        self.handled: set[int] = set()
        self._updates_changed = asyncio.Condition()
        self._poll_generation = 0  # getUpdates calls so far (the newest one wins)
        self._accepted: dict[tuple, deque[float]] = defaultdict(deque)
        self._penalty_until: dict[tuple, float] = {}
        self._tokens: dict[tuple, tuple[float, float]] = {}  # scope -> (tokens, when counted): buckets
        self._injected: list[Injected] = []
        self.kicked: set[int] = set()  # chats the bot was removed from: writes there get 403
        self.rich_messages = False  # Bot API 10.1: sendRichMessage, rich drafts, rich_message on edits
        self.ephemeral: EphemeralMode = "ignored"
        self.ephemerals: list[Ephemeral] = []  # ephemeral messages sent, each seen by its receiver alone
        self._runner: web.AppRunner | None = None
        self.api_url = ""
        self._init_guests_and_stops()

    # ---- lifecycle -------------------------------------------------------------------
    async def start(self) -> FakeTelegram:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.api_url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def bot_id(self) -> int:
        return self.bot_user["id"]

    @property
    def username(self) -> str:
        return self.bot_user["username"]

    # ---- scripting -------------------------------------------------------------------
    def inject(
        self,
        method: str,
        *,
        status: int = 429,
        description: str = "",
        retry_after: float | None = None,
        chat_id: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` matching calls fail (a 429 also penalises the chat)."""
        if status == 429 and not description:
            description = f"Too Many Requests: retry after {retry_after}"
        self._injected.append(Injected(method, status, description, retry_after, chat_id, times))

    def kick_bot(self, chat_id: int, by: dict) -> dict:
        """A member removes the bot from a group: Telegram sends my_chat_member and refuses
        every later write to the chat with 403."""
        self.kicked.add(chat_id)
        bot = {
            "id": self.bot_user["id"],
            "is_bot": True,
            "first_name": self.bot_user["first_name"],
            "username": self.username,
        }
        return self.push_update(
            {
                "my_chat_member": {
                    "chat": self.chats[chat_id],
                    "from": by,
                    "date": int(time.time()),
                    "old_chat_member": {"status": "member", "user": bot},
                    "new_chat_member": {"status": "kicked", "user": bot, "until_date": 0},
                }
            }
        )

    def add_chat(
        self, chat_id: int, type_: str, *, title: str = "", is_forum: bool = False, user: dict | None = None
    ) -> dict:
        chat: dict[str, Any] = {"id": chat_id, "type": type_}
        if type_ == "private":
            user = user or {}
            chat.update(first_name=user.get("first_name", "User"))
            if user.get("username"):
                chat["username"] = user["username"]
        else:
            chat["title"] = title or f"Group {chat_id}"
            if is_forum:
                chat["is_forum"] = True
        self.chats[chat_id] = chat
        return chat

    def add_file(self, data: bytes, *, size: int | None = None, suffix: str = "jpg") -> str:
        """Store a downloadable file; ``size`` may claim more than ``len(data)``."""
        n = self._next_file
        self._next_file += 1
        file_id = f"FILE{n:04d}"
        self.files[file_id] = (data, size if size is not None else len(data), f"files/file_{n}.{suffix}")
        return file_id

    def numbered(self, update: dict) -> dict:
        """``update`` with the next update id, not queued (for a webhook to receive)."""
        update = {"update_id": self._next_update_id, **update}
        self._next_update_id += 1
        return update

    def push_update(self, update: dict) -> dict:
        update = self.numbered(update)
        self._updates.append(update)
        self.pushed.append(update["update_id"])
        asyncio.get_running_loop().create_task(self._notify())
        return update

    async def _notify(self) -> None:
        async with self._updates_changed:
            self._updates_changed.notify_all()

    def new_message(
        self,
        chat_id: int,
        user: dict,
        text: str | None = None,
        *,
        entities: list[dict] | None = None,
        thread_id: int | None = None,
        reply_to: int | None = None,
        extra: dict | None = None,
    ) -> dict:
        """A user's message dict as Telegram would deliver it (not pushed yet)."""
        chat = self.chats[chat_id]
        mid = self._take_message_id(chat_id)
        msg: dict[str, Any] = {
            "message_id": mid,
            "date": int(time.time()),
            "chat": chat,
            "from": user,
        }
        if text is not None:
            msg["text"] = text
        if entities:
            msg["entities"] = entities
        if thread_id is not None:
            msg["message_thread_id"] = thread_id
            if chat.get("is_forum"):
                msg["is_topic_message"] = True
        if reply_to is not None:
            msg["reply_to_message"] = self._message_json(self.messages[chat_id][reply_to])
        if extra:
            msg.update(extra)
        self.messages[chat_id][mid] = StoredMessage(
            mid,
            chat_id,
            False,
            text or msg.get("caption", ""),
            entities or [],
            None,
            thread_id,
            reply_to,
            raw=msg,
        )
        return msg

    def send_user_message(self, chat_id: int, user: dict, text: str | None = None, **kw: Any) -> dict:
        msg = self.new_message(chat_id, user, text, **kw)
        self.push_update({"message": msg})
        return msg

    def photo_sizes(self, data: bytes, *, size: int | None = None) -> list[dict]:
        """A photo's PhotoSize list: a small thumbnail first, the original last."""
        thumb = self.add_file(data[:64] or b"x")
        big = self.add_file(data, size=size)
        return [
            {
                "file_id": thumb,
                "file_unique_id": f"u{thumb}",
                "width": 90,
                "height": 90,
                "file_size": len(data[:64] or b"x"),
            },
            {
                "file_id": big,
                "file_unique_id": f"u{big}",
                "width": 1280,
                "height": 960,
                "file_size": size if size is not None else len(data),
            },
        ]

    def button_press(self, chat_id: int, message_id: int, user: dict, data: str) -> dict:
        """The callback_query a press on a button of the bot's message makes (not queued)."""
        stored = self.messages[chat_id][message_id]
        return {
            "callback_query": {
                "id": f"cb{self._next_update_id}",
                "from": user,
                "chat_instance": f"ci{chat_id}",
                "message": self._message_json(stored),
                "data": data,
            }
        }

    def press_button(self, chat_id: int, message_id: int, user: dict, data: str) -> dict:
        return self.push_update(self.button_press(chat_id, message_id, user, data))

    def mention_entity(self, text: str, mention: str | None = None) -> dict:
        mention = mention or f"@{self.username}"
        start = text.index(mention)
        return {"type": "mention", "offset": utf16_len(text[:start]), "length": utf16_len(mention)}

    @staticmethod
    def command_entity(text: str) -> dict:
        command = text.split()[0]
        return {"type": "bot_command", "offset": 0, "length": utf16_len(command)}

    # ---- inspection ------------------------------------------------------------------
    def calls_to(self, method: str, chat_id: int | None = None) -> list[Call]:
        return [c for c in self.calls if c.method == method and (chat_id is None or c.chat_id == chat_id)]

    def bot_messages(self, chat_id: int) -> list[StoredMessage]:
        return [m for m in sorted(self.messages[chat_id].values(), key=lambda m: m.message_id) if m.from_bot]

    def earned_429s(self) -> list[Call]:
        """429s the bot caused itself (not scripted by the test)."""
        return [c for c in self.calls if c.status == 429 and not c.injected]

    def limit_violations(self) -> list[str]:
        """Recheck every accepted call against the limits (the server refuses excess, so a
        non-empty list means the fake itself is broken)."""
        problems: list[str] = []
        accepted = [c for c in self.calls if c.ok]
        for scope, window, calls in self._scoped(accepted):
            times = [c.at for c in calls]
            j = 0
            for i, t in enumerate(times):
                while times[j] <= t - window.seconds:
                    j += 1
                if i - j + 1 > window.count:
                    problems.append(f"{scope}: {i - j + 1} calls within {window.seconds}s")
                    break
        return problems

    def _scoped(self, calls: list[Call]):
        by_scope: dict[tuple, list[Call]] = defaultdict(list)
        windows: dict[tuple, Window] = {}
        for c in calls:
            for scope, window in self._scopes_of(c.method, c.params):
                by_scope[scope].append(c)
                windows[scope] = window
        for scope, cs in by_scope.items():
            yield scope, windows[scope], cs

    # ---- limits ----------------------------------------------------------------------
    def _scopes_of(self, method: str, params: dict) -> list[tuple[tuple, Window]]:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            if method in ("editMessageText",) and "inline_message_id" in params:
                return [(("global",), self.limits.global_)]
            return []
        scopes: list[tuple[tuple, Window]] = []
        if method in WRITE_METHODS:
            scopes.append((("global",), self.limits.global_))
            scopes.append((("chat", chat_id), self.limits.chat))
            if self.chats.get(chat_id, {}).get("type") in ("group", "supergroup"):
                scopes.append((("group", chat_id), self.limits.group))
        elif method in DRAFT_METHODS:
            scopes.append((("global",), self.limits.global_))
            for i, w in enumerate(self.limits.draft):
                scopes.append((("draft", chat_id, i), w))
        return scopes

    def _retry_value(self, seconds: float) -> float:
        if self.limits.integer_retry_after:
            return float(max(1, math.ceil(seconds)))
        return max(0.01, math.ceil(seconds * 100) / 100)

    def _bucket(self, scope: tuple, window: Window, now: float) -> float:
        """Tokens in ``scope``'s bucket now (``FakeLimits.buckets``)."""
        size = max(1, window.count // 6)
        tokens, then = self._tokens.get(scope, (float(size), now))
        return min(float(size), tokens + (now - then) * window.count / window.seconds)

    def _check_limits(self, method: str, params: dict, now: float) -> None:
        scopes = self._scopes_of(method, params)
        wait = 0.0
        for scope, window in scopes:
            until = self._penalty_until.get(scope, 0.0)
            if until > now:
                wait = max(wait, until - now)
                continue
            if self.limits.buckets:
                tokens = self._bucket(scope, window, now)
                if tokens < 1.0:
                    wait = max(wait, (1.0 - tokens) * window.seconds / window.count)
                continue
            q = self._accepted[scope]
            while q and q[0] <= now - window.seconds:
                q.popleft()
            if len(q) >= window.count:
                wait = max(wait, q[0] + window.seconds - now)
        if wait > 0:
            retry = self._retry_value(wait)
            for scope, _ in scopes:
                # Like Telegram: calling again before retry_after is over earns another 429.
                if scope[0] != "global":
                    self._penalty_until[scope] = max(self._penalty_until.get(scope, 0.0), now + retry)
            raise TelegramError(429, f"Too Many Requests: retry after {retry:g}", retry)
        for scope, window in scopes:
            if self.limits.buckets:
                self._tokens[scope] = (self._bucket(scope, window, now) - 1.0, now)
            self._accepted[scope].append(now)

    def _take_injected(self, method: str, params: dict, now: float) -> None:
        for inj in self._injected:
            if inj.method != method or inj.times <= 0:
                continue
            if inj.chat_id is not None and params.get("chat_id") != inj.chat_id:
                continue
            inj.times -= 1
            if inj.status == 429 and inj.retry_after:
                for scope, _ in self._scopes_of(method, params):
                    if scope[0] != "global":
                        self._penalty_until[scope] = max(self._penalty_until.get(scope, 0.0), now + inj.retry_after)
            err = TelegramError(inj.status, inj.description, inj.retry_after)
            err.injected = True  # type: ignore[attr-defined]
            raise err

    # ---- HTTP ------------------------------------------------------------------------
    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        path = request.match_info["path"]
        await asyncio.sleep(self.download_delay)
        for data, _size, file_path in self.files.values():
            if file_path == path:
                return web.Response(body=data, content_type="application/octet-stream")
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    async def _handle_method(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        method = request.match_info["method"]
        params = await _read_params(request)
        call = Call(method, params, now)
        self.calls.append(call)
        if request.match_info["token"] != self.token:
            call.status, call.description = 401, "Unauthorized"
            return _error(401, "Unauthorized")
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            call.status, call.description = 404, "Not Found"
            return _error(404, "Not Found")
        try:
            if params.get("chat_id") in self.kicked and method in WRITE_METHODS | DRAFT_METHODS:
                raise TelegramError(403, "Forbidden: bot was kicked from the supergroup chat")
            self._take_injected(method, params, now)
            self._check_limits(method, params, now)
            result = await handler(params)
        except TelegramError as exc:
            call.status, call.description = exc.status, exc.description
            call.retry_after = exc.retry_after
            call.injected = getattr(exc, "injected", False)
            self._uncount(method, params, now)  # a refused call does not count
            return _error(exc.status, exc.description, exc.retry_after)
        return web.json_response({"ok": True, "result": result})

    def _uncount(self, method: str, params: dict, now: float) -> None:
        for scope, _ in self._scopes_of(method, params):
            q = self._accepted.get(scope)
            if q and q[-1] == now:
                q.pop()

    # ---- methods ---------------------------------------------------------------------
    async def _m_getMe(self, params: dict) -> dict:
        return self.bot_user

    async def _m_logOut(self, params: dict) -> bool:
        return True

    async def _m_close(self, params: dict) -> bool:
        return True

    async def _m_getUpdates(self, params: dict) -> list[dict]:
        if self.webhook.get("url"):
            raise TelegramError(
                409,
                "Conflict: can't use getUpdates method while webhook is "
                "active; use deleteWebhook to delete the webhook first",
            )
        offset = params.get("offset") or 0
        limit = min(max(params.get("limit") or 100, 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        if offset:
            # Confirm everything below offset, as Telegram does.
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        # Like Telegram, a newer getUpdates ends one still waiting with 409 Conflict: two
        # pollers of one bot take turns failing.
        self._poll_generation += 1
        mine = self._poll_generation
        await self._notify()
        deadline = time.monotonic() + timeout
        while True:
            if self._poll_generation != mine:
                raise TelegramError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                )
            pending = [u for u in self._updates if u["update_id"] >= offset]
            if pending:
                return pending[:limit]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            async with self._updates_changed:
                try:
                    await asyncio.wait_for(self._updates_changed.wait(), remaining)
                except TimeoutError:
                    return []

    async def _m_setWebhook(self, params: dict) -> bool:
        url = params.get("url", "")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise TelegramError(400, "Bad Request: secret token contains unallowed characters")
        if url and not url.startswith("https://"):
            raise TelegramError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook = {"url": url, "secret_token": secret, "allowed_updates": params.get("allowed_updates")}
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _m_deleteWebhook(self, params: dict) -> bool:
        self.webhook = {}
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _m_getWebhookInfo(self, params: dict) -> dict:
        return {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": 0 if self.webhook.get("url") else len(self._updates),
        }

    async def _m_setMyCommands(self, params: dict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise TelegramError(400, "Bad Request: commands must be an array of at most 100 items")
        for c in commands:
            name, desc = c.get("command", ""), c.get("description", "")
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise TelegramError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(desc) <= 256:
                raise TelegramError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands = commands
        return True

    async def _m_getMyCommands(self, params: dict) -> list[dict]:
        return self.commands

    async def _m_deleteMyCommands(self, params: dict) -> bool:
        self.commands = []
        return True

    async def _m_answerCallbackQuery(self, params: dict) -> bool:
        if not params.get("callback_query_id"):
            raise TelegramError(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        text = params.get("text")
        if text is not None and len(text) > 200:
            raise TelegramError(400, "Bad Request: MESSAGE_TOO_LONG")
        return True

    async def _m_sendChatAction(self, params: dict) -> bool:
        self._chat(params)
        if params.get("action") not in {
            "typing",
            "upload_photo",
            "record_video",
            "upload_video",
            "record_voice",
            "upload_voice",
            "upload_document",
            "choose_sticker",
            "find_location",
            "record_video_note",
            "upload_video_note",
        }:
            raise TelegramError(400, "Bad Request: wrong parameter action in request")
        return True

    async def _m_getFile(self, params: dict) -> dict:
        file_id = params.get("file_id")
        if file_id not in self.files:
            raise TelegramError(400, "Bad Request: invalid file_id")
        data, size, path = self.files[file_id]
        if size > FILE_DOWNLOAD_LIMIT:
            raise TelegramError(400, "Bad Request: file is too big")
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": size, "file_path": path}

    async def _m_sendMessageDraft(self, params: dict) -> bool:
        chat = self._chat(params)
        if chat["type"] != "private":
            raise TelegramError(400, "Bad Request: TEXTDRAFT_PEER_INVALID")
        if not self.drafts_allowed:
            raise TelegramError(400, "Bad Request: method is not available for this bot")
        if not params.get("draft_id"):
            raise TelegramError(400, "Bad Request: draft_id must be non-zero")
        text = params.get("text") or ""
        self._validate_text(text, params, allow_empty=True)
        if not self._draft_stop(chat, params):
            return True
        self.drafts[(chat["id"], params["draft_id"])] = text
        return True

    async def _m_sendMessage(self, params: dict) -> dict:
        chat = self._chat(params)
        if params.get("ephemeral_message_parameters") is not None and self.ephemeral != "ignored":
            return self._send_ephemeral(chat, params)
        text = params.get("text")
        if text is None:
            raise TelegramError(400, "Bad Request: message text is empty")
        text, entities = self._validate_text(text, params)
        thread_id = params.get("message_thread_id")
        if thread_id is not None and not chat.get("is_forum") and chat["type"] != "private":
            raise TelegramError(400, "Bad Request: message thread not found")
        reply_to = None
        rp = params.get("reply_parameters") or {}
        if rp or params.get("reply_to_message_id"):
            reply_to = rp.get("message_id") or params.get("reply_to_message_id")
            if reply_to not in self.messages[chat["id"]]:
                if not (rp.get("allow_sending_without_reply") or params.get("allow_sending_without_reply")):
                    raise TelegramError(400, "Bad Request: message to be replied not found")
                reply_to = None
        markup = self._markup(params)
        mid = self._take_message_id(chat["id"])
        stored = StoredMessage(mid, chat["id"], True, text, entities, markup, thread_id, reply_to)
        self.messages[chat["id"]][mid] = stored
        return self._message_json(stored)

    async def _m_sendDocument(self, params: dict) -> dict:
        chat = self._chat(params)
        upload = params.get("document")
        if isinstance(upload, str) and upload in self.files:  # a file_id sent again
            data, _size, path = self.files[upload]
            name, mime = path.rsplit("/", 1)[-1], "application/octet-stream"
        elif hasattr(upload, "file"):  # multipart: an aiohttp FileField
            data, name = upload.file.read(), upload.filename or "document"
            mime = upload.content_type or "application/octet-stream"
        else:
            raise TelegramError(400, "Bad Request: there is no document in the request")
        if not data:
            raise TelegramError(400, "Bad Request: file must be non-empty")
        if len(data) > UPLOAD_LIMIT:
            raise TelegramError(413, "Request Entity Too Large")
        caption = params.get("caption") or ""
        if utf16_len(caption) > CAPTION_LIMIT:
            raise TelegramError(400, "Bad Request: message caption is too long")
        file_id = self.add_file(data, suffix=name.rsplit(".", 1)[-1] if "." in name else "bin")
        document = {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_name": name,
            "mime_type": mime,
            "file_size": len(data),
        }
        thread_id = params.get("message_thread_id")
        reply_to = (params.get("reply_parameters") or {}).get("message_id")
        if reply_to not in self.messages[chat["id"]]:
            reply_to = None
        mid = self._take_message_id(chat["id"])
        stored = StoredMessage(
            mid, chat["id"], True, caption, [], self._markup(params), thread_id, reply_to, document=document
        )
        self.messages[chat["id"]][mid] = stored
        return self._message_json(stored)

    async def _m_editMessageText(self, params: dict) -> dict:
        chat = self._chat(params)
        if params.get("rich_message") is not None and self.rich_messages:
            return self._edit_rich(chat, params)
        stored = self.messages[chat["id"]].get(params.get("message_id"))  # type: ignore[arg-type]
        if stored is None:
            raise TelegramError(400, "Bad Request: message to edit not found")
        if not stored.from_bot:
            raise TelegramError(400, "Bad Request: message can't be edited")
        text, entities = self._validate_text(params.get("text") or "", params)
        markup = self._markup(params)
        if text == stored.text and entities == stored.entities and markup == stored.reply_markup:
            raise TelegramError(400, NOT_MODIFIED)
        stored.text, stored.entities, stored.reply_markup = text, entities, markup
        stored.edits += 1
        return self._message_json(stored, edited=True)

    async def _m_editMessageReplyMarkup(self, params: dict) -> dict:
        chat = self._chat(params)
        stored = self.messages[chat["id"]].get(params.get("message_id"))  # type: ignore[arg-type]
        if stored is None:
            raise TelegramError(400, "Bad Request: message to edit not found")
        markup = self._markup(params)
        if markup == stored.reply_markup:
            raise TelegramError(400, NOT_MODIFIED)
        stored.reply_markup = markup
        return self._message_json(stored, edited=True)

    async def _m_deleteMessage(self, params: dict) -> bool:
        chat = self._chat(params)
        if self.messages[chat["id"]].pop(params.get("message_id"), None) is None:  # type: ignore[arg-type]
            raise TelegramError(400, "Bad Request: message to delete not found")
        return True

    # ---- a user's stop on a draft (Bot API 10.3) and guest mode (10.0) ----------------
    # Documented: sendMessageDraft's can_stop ("show the user a button to stop further drafts")
    # and keep_on_stop ("keep the draft in the chat when the button is pressed"); the update
    # stopped_message_generation = MessageGenerationStopped {chat, message_thread_id?, draft_id},
    # sent for drafts sent with can_stop. Guest mode: Update.guest_message is a Message with
    # guest_query_id; answerGuestQuery(guest_query_id, result: InlineQueryResult) posts the
    # result into that chat and returns SentGuestMessage {inline_message_id}.
    # Assumed (not documented): a Telegram without 10.3 refuses can_stop with a 400 (a real
    # one may ignore it); drafts of a stopped draft id are accepted and change nothing; a query
    # is answered once, and a second answer or an unknown id gets the 400 answerInlineQuery
    # gives; only "article" results with text content are modelled; the chat of a guest query
    # is one the bot never joined, so the bot cannot sendMessage there.
    def _init_guests_and_stops(self) -> None:
        self.can_stop_supported = True  # False: a Bot API older than 10.3
        self.stoppable: dict[tuple[int, int], bool] = {}  # (chat, draft_id) -> keep_on_stop
        self.stopped_drafts: set[tuple[int, int]] = set()
        self.guest_queries: dict[str, int] = {}  # guest_query_id -> chat id, until answered
        self.guest_answers: dict[str, GuestAnswer] = {}
        self._next_guest = 1

    def _draft_stop(self, chat: dict, params: dict) -> bool:
        """can_stop / keep_on_stop of a draft; False when the draft was stopped already."""
        can_stop = _flag(params.get("can_stop"))
        if (can_stop or "keep_on_stop" in params) and not self.can_stop_supported:
            raise TelegramError(400, "Bad Request: unknown parameter can_stop")
        key = (chat["id"], params["draft_id"])
        if key in self.stopped_drafts:
            return False
        if can_stop:
            self.stoppable[key] = _flag(params.get("keep_on_stop"))
        return True

    def stop_draft(self, chat_id: int, draft_id: int | None = None, *, thread_id: int | None = None) -> dict:
        """The user taps stop on a draft (the latest stoppable one of the chat by default):
        the draft stops changing (and goes, without keep_on_stop) and the update is queued."""
        if draft_id is None:
            draft_id = [d for (c, d) in self.stoppable if c == chat_id][-1]
        key = (chat_id, draft_id)
        self.stopped_drafts.add(key)
        if not self.stoppable.get(key, False):
            self.drafts.pop(key, None)
        stopped: dict[str, Any] = {"chat": self.chats[chat_id], "draft_id": draft_id}
        if thread_id is not None:
            stopped["message_thread_id"] = thread_id
        return self.push_update({"stopped_message_generation": stopped})

    def guest_message(self, chat_id: int, user: dict, text: str, **kw: Any) -> dict:
        """A user summons the bot in ``chat_id`` (one it has not joined): the message of a
        ``guest_message`` update, its query open for an answer (not queued)."""
        query_id = f"gq{self._next_guest}"
        self._next_guest += 1
        message = self.new_message(chat_id, user, text, extra={"guest_query_id": query_id, **kw.pop("extra", {})}, **kw)
        self.guest_queries[query_id] = chat_id
        return message

    def guest_query(self, chat_id: int, user: dict, text: str, **kw: Any) -> dict:
        """``guest_message`` queued for getUpdates."""
        message = self.guest_message(chat_id, user, text, **kw)
        self.push_update({"guest_message": message})
        return message

    async def _m_answerGuestQuery(self, params: dict) -> dict:
        query_id = params.get("guest_query_id")
        if not isinstance(query_id, str) or query_id not in self.guest_queries:
            raise TelegramError(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        result = params.get("result")
        if isinstance(result, str):
            try:
                result = json.loads(result)
            except ValueError:
                result = None
        if (
            not isinstance(result, dict)
            or result.get("type") != "article"
            or not result.get("id")
            or not result.get("title")
            or not isinstance(result.get("input_message_content"), dict)
        ):
            raise TelegramError(400, "Bad Request: RESULT_INVALID")
        content = result["input_message_content"]
        text, entities = self._validate_text(content.get("message_text") or "", content)
        chat_id = self.guest_queries.pop(query_id)
        inline_id = f"guest-{query_id}"
        self.guest_answers[query_id] = GuestAnswer(chat_id, text, entities, result.get("reply_markup"), inline_id)
        return {"inline_message_id": inline_id}

    # ---- rich and ephemeral messages (Bot API 10.1–10.3) -------------------------------
    # Documented (core.telegram.org/bots/api, api-changelog): sendRichMessage(chat_id,
    # rich_message: InputRichMessage, message_thread_id, reply_parameters, reply_markup,
    # ephemeral_message_parameters) → Message with ``rich_message``; editMessageText takes
    # ``rich_message`` instead of ``text``; sendRichMessageDraft(chat_id, draft_id, rich_message,
    # message_thread_id) → True, private chats only; InputRichMessage holds exactly one of html,
    # markdown or blocks; Rich Message Limits: 32,768 characters of text. Ephemeral messages
    # (10.2; EphemeralMessageParameters {receiver_user_id, callback_query_id?,
    # replace_callback_query_message?} since 10.3) on sendMessage and sendRichMessage; the sent
    # Message carries ``ephemeral_message_id`` and ``receiver_user``.
    # Assumed (not documented): the wording of every refusal below; that ephemeral messages are
    # refused in private chats; the received RichMessage's blocks (one paragraph holding the
    # source here: nothing of the bot reads them); message_id 0 on an ephemeral message; that rich
    # drafts share the draft budget. A server without these features answers 404 for the methods
    # and ignores parameters it does not know, as Telegram does (``ephemeral = "ignored"``).
    async def _m_sendRichMessage(self, params: dict) -> dict:
        if not self.rich_messages:
            raise TelegramError(404, "Not Found")
        chat = self._chat(params)
        rich = self._rich_content(params)
        if params.get("ephemeral_message_parameters") is not None and self.ephemeral != "ignored":
            return self._send_ephemeral(chat, params, rich=rich)
        thread_id = params.get("message_thread_id")
        if thread_id is not None and not chat.get("is_forum") and chat["type"] != "private":
            raise TelegramError(400, "Bad Request: message thread not found")
        reply_to = self._reply_target(chat["id"], params)
        mid = self._take_message_id(chat["id"])
        stored = StoredMessage(
            mid, chat["id"], True, _rich_source(rich), [], self._markup(params), thread_id, reply_to, rich=rich
        )
        self.messages[chat["id"]][mid] = stored
        return self._message_json(stored)

    async def _m_sendRichMessageDraft(self, params: dict) -> bool:
        if not self.rich_messages:
            raise TelegramError(404, "Not Found")
        chat = self._chat(params)
        if chat["type"] != "private":
            raise TelegramError(400, "Bad Request: TEXTDRAFT_PEER_INVALID")
        if not self.drafts_allowed:
            raise TelegramError(400, "Bad Request: method is not available for this bot")
        if not params.get("draft_id"):
            raise TelegramError(400, "Bad Request: draft_id must be non-zero")
        if not self._draft_stop(chat, params):  # a stopped draft changes no more
            return True
        self.drafts[(chat["id"], params["draft_id"])] = _rich_source(self._rich_content(params))
        return True

    def _edit_rich(self, chat: dict, params: dict) -> dict:
        stored = self.messages[chat["id"]].get(params.get("message_id"))  # type: ignore[arg-type]
        if stored is None:
            raise TelegramError(400, "Bad Request: message to edit not found")
        if not stored.from_bot:
            raise TelegramError(400, "Bad Request: message can't be edited")
        rich = self._rich_content(params)
        markup = self._markup(params)
        if rich == stored.rich and markup == stored.reply_markup:
            raise TelegramError(400, NOT_MODIFIED)
        stored.text, stored.entities, stored.rich, stored.reply_markup = _rich_source(rich), [], rich, markup
        stored.edits += 1
        return self._message_json(stored, edited=True)

    def _send_ephemeral(self, chat: dict, params: dict, *, rich: dict | None = None) -> dict:
        if self.ephemeral == "refused":
            raise TelegramError(400, "Bad Request: ephemeral messages are not available for this bot")
        wanted = params.get("ephemeral_message_parameters")
        receiver = wanted.get("receiver_user_id") if isinstance(wanted, dict) else None
        if not isinstance(receiver, int):
            raise TelegramError(400, "Bad Request: receiver_user_id must be specified")
        if chat["type"] == "private":
            raise TelegramError(400, "Bad Request: ephemeral messages can't be sent to private chats")
        if rich is None:
            text, entities = self._validate_text(params.get("text") or "", params)
        else:
            text, entities = _rich_source(rich), []
        sent = Ephemeral(
            len(self.ephemerals) + 1,
            chat["id"],
            receiver,
            text,
            entities,
            self._markup(params),
            params.get("message_thread_id"),
            self._reply_target(chat["id"], params),
            rich,
        )
        self.ephemerals.append(sent)
        out: dict[str, Any] = {
            "message_id": 0,
            "ephemeral_message_id": sent.ephemeral_message_id,
            "date": int(time.time()),
            "chat": chat,
            "from": self.bot_user,
            "receiver_user": {"id": receiver, "is_bot": False, "first_name": "User"},
        }
        if rich is None:
            out["text"] = text
        else:
            out["rich_message"] = _rich_received(rich)
        return out

    def _rich_content(self, params: dict) -> dict:
        rich = params.get("rich_message")
        if not isinstance(rich, dict):
            raise TelegramError(400, "Bad Request: can't parse rich_message JSON object")
        given = [key for key in ("html", "markdown", "blocks") if rich.get(key)]
        if len(given) != 1:
            raise TelegramError(400, "Bad Request: exactly one of html, markdown or blocks must be specified")
        if len(_rich_source(rich)) > RICH_TEXT_LIMIT:
            raise TelegramError(400, "Bad Request: rich message text is too long")
        return rich

    def _reply_target(self, chat_id: int, params: dict) -> int | None:
        reply_to = (params.get("reply_parameters") or {}).get("message_id")
        if reply_to is None or reply_to in self.messages[chat_id]:
            return reply_to
        if not (params.get("reply_parameters") or {}).get("allow_sending_without_reply"):
            raise TelegramError(400, "Bad Request: message to be replied not found")
        return None

    def ephemerals_for(self, chat_id: int, user_id: int) -> list[Ephemeral]:
        return [e for e in self.ephemerals if e.chat_id == chat_id and e.receiver == user_id]

    # ---- helpers ---------------------------------------------------------------------
    def _chat(self, params: dict) -> dict:
        chat = self.chats.get(params.get("chat_id"))  # type: ignore[arg-type]
        if chat is None:
            raise TelegramError(400, "Bad Request: chat not found")
        return chat

    def _take_message_id(self, chat_id: int) -> int:
        mid = self._next_message_id[chat_id]
        self._next_message_id[chat_id] = mid + 1
        return mid

    def _markup(self, params: dict) -> dict | None:
        markup = params.get("reply_markup")
        if markup is None:
            return None
        rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
        if rows is None:
            return markup
        for row in rows:
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= 64:
                    raise TelegramError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup if rows else None

    def _validate_text(self, text: str, params: dict, *, allow_empty: bool = False) -> tuple[str, list[dict]]:
        parse_mode = params.get("parse_mode")
        entities = params.get("entities") or []
        if parse_mode:
            text, entities = _parse_markup(text, parse_mode)
        if not text.strip() and not allow_empty:
            raise TelegramError(400, "Bad Request: message text is empty")
        length = utf16_len(text)
        if length > TEXT_LIMIT:
            raise TelegramError(400, "Bad Request: message is too long")
        for e in entities:
            offset, elen = e.get("offset"), e.get("length")
            if not isinstance(offset, int) or not isinstance(elen, int) or offset < 0 or elen <= 0:
                raise TelegramError(400, "Bad Request: can't parse entities: invalid entity offset or length")
            if offset + elen > length:
                raise TelegramError(400, "Bad Request: can't parse entities: entity ends beyond the end of the text")
            if e.get("type") == "text_link" and not e.get("url"):
                raise TelegramError(400, "Bad Request: can't parse entities: text_link needs a url")
        return text, entities

    def _message_json(self, m: StoredMessage, *, edited: bool = False) -> dict:
        if m.raw and not m.from_bot:
            return m.raw
        chat = self.chats[m.chat_id]
        out: dict[str, Any] = {
            "message_id": m.message_id,
            "date": int(time.time()),
            "chat": chat,
            "from": self.bot_user,
            "text": m.text,
        }
        if m.document is not None:
            del out["text"]
            out["document"] = m.document
            if m.text:
                out["caption"] = m.text
        if m.entities:
            out["entities"] = m.entities
        if m.rich is not None:
            out["rich_message"] = _rich_received(m.rich)
        if m.reply_markup:
            out["reply_markup"] = m.reply_markup
        if m.thread_id is not None:
            out["message_thread_id"] = m.thread_id
            if chat.get("is_forum"):
                out["is_topic_message"] = True
        if m.reply_to is not None and m.reply_to in self.messages[m.chat_id]:
            replied = self.messages[m.chat_id][m.reply_to]
            out["reply_to_message"] = {k: v for k, v in self._message_json(replied).items() if k != "reply_to_message"}
        if edited:
            out["edit_date"] = int(time.time())
        return out


@dataclass
class GuestAnswer:
    """What answerGuestQuery posted into a guest chat."""

    chat_id: int
    text: str
    entities: list[dict]
    reply_markup: dict | None
    inline_message_id: str


def _flag(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1"))


def _error(status: int, description: str, retry_after: float | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None and status == 429:
        body["parameters"] = {"retry_after": int(retry_after) if float(retry_after).is_integer() else retry_after}
    return web.json_response(body, status=status)


async def _read_params(request: web.Request) -> dict[str, Any]:
    raw: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            raw.update(body if isinstance(body, dict) else {})
            return raw
        form = await request.post()
        for key, value in form.items():
            raw[key] = value  # file parts are kept as they are
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(value, str):
            out[key] = value
        elif key in _INT_FIELDS:
            out[key] = int(value) if re.fullmatch(r"-?\d+", value) else value
        elif key in _BOOL_FIELDS:
            out[key] = value.lower() in ("true", "1")
        elif key in _JSON_FIELDS:
            try:
                out[key] = json.loads(value)
            except ValueError:
                out[key] = value  # left as text: the method's validation refuses it
        else:
            out[key] = value
    return out


# ---- parse_mode validation: enough of Telegram's parsers to refuse half-written markup ----
_MDV2_SPECIAL = set("_*[]()~`>#+-=|{}.!")


def _parse_markup(text: str, parse_mode: str) -> tuple[str, list[dict]]:
    mode = parse_mode.lower()
    if mode == "html":
        return _parse_html(text)
    if mode == "markdownv2":
        return _parse_mdv2(text)
    if mode == "markdown":
        if any(text.count(ch) % 2 for ch in "*_`"):
            raise TelegramError(400, "Bad Request: can't parse entities: can't find end of the entity")
        return re.sub(r"[*_`]", "", text), []
    raise TelegramError(400, f"Bad Request: unsupported parse_mode {parse_mode}")


def _parse_html(text: str) -> tuple[str, list[dict]]:
    allowed = {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "a",
        "code",
        "pre",
        "span",
        "tg-spoiler",
        "blockquote",
        "tg-emoji",
    }
    stack: list[str] = []
    out: list[str] = []
    for token in re.split(r"(<[^>]*>)", text):
        if token.startswith("<") and token.endswith(">"):
            m = re.fullmatch(r"<\s*(/?)\s*([a-zA-Z-]+)[^>]*>", token)
            if not m or m.group(2).lower() not in allowed:
                raise TelegramError(400, f'Bad Request: can\'t parse entities: unsupported start tag "{token}"')
            name = m.group(2).lower()
            if m.group(1):
                if not stack or stack.pop() != name:
                    raise TelegramError(400, f'Bad Request: can\'t parse entities: unmatched end tag "{name}"')
            else:
                stack.append(name)
        else:
            if "<" in token or re.search(r"&(?!(lt|gt|amp|quot|#\d+);)", token):
                raise TelegramError(400, "Bad Request: can't parse entities: unexpected character")
            out.append(token.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&"))
    if stack:
        raise TelegramError(
            400, f"Bad Request: can't parse entities: can't find end tag corresponding to start tag \"{stack[-1]}\""
        )
    return "".join(out), []


def _parse_mdv2(text: str) -> tuple[str, list[dict]]:
    out: list[str] = []
    open_marks: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch in "*_~`|":
            mark = "||" if text.startswith("||", i) else ("__" if text.startswith("__", i) else ch)
            if open_marks and open_marks[-1] == mark:
                open_marks.pop()
            else:
                open_marks.append(mark)
            i += len(mark)
            continue
        if ch in _MDV2_SPECIAL:
            raise TelegramError(
                400,
                f"Bad Request: can't parse entities: character '{ch}' is reserved "
                "and must be escaped with the preceding '\\'",
            )
        out.append(ch)
        i += 1
    if open_marks:
        raise TelegramError(400, "Bad Request: can't parse entities: can't find end of the entity")
    return "".join(out), []
