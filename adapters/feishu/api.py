"""Feishu's Open API as the adapter uses it: every call within its budgets, errors as codes.

JSON calls go through lark-oapi's typed requests (its generic ``BaseRequest`` for the one API it
has no model for: cards shown to one person, ``ephemeral/v1``) and its synchronous methods, run in a small
thread pool of our own: the SDK's ``a…`` coroutines fetch their token with blocking
``requests`` inside the event loop, and the default executor is shared with the rest of
the bot. The tenant access token is ours (``TenantToken``, passed with every request): the
SDK's own cache keeps a token for the whole process and never drops one Feishu calls
invalid. Binary downloads and the two calls the SDK has no model for (the token, the bot's
identity) use the adapter's aiohttp session: a download is read in chunks under a cap, where
the SDK would hold any size in memory.

Every call acquires the budgets of its API (per app) and of its scope (the chat, the card,
the message) first (``bot.platform.guarded``). Feishu says "too fast" two ways: HTTP 429 with
code 99991400 and ``x-ogw-ratelimit-reset`` (the API's app-wide windows: that budget is
paused for the reset) and HTTP 400 with 230020 (a chat's or a card's own limit: that scope
is paused for a second). Both surface as ``RateLimited``; nothing is retried blindly here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import unquote

import aiohttp
import lark_oapi as lark
import requests
from lark_oapi.api.cardkit.v1 import (
    Card,
    ContentCardElementRequest,
    ContentCardElementRequestBody,
    CreateCardElementRequest,
    CreateCardElementRequestBody,
    CreateCardRequest,
    CreateCardRequestBody,
    DeleteCardElementRequest,
    DeleteCardElementRequestBody,
    SettingsCardRequest,
    SettingsCardRequestBody,
    UpdateCardRequest,
    UpdateCardRequestBody,
)
from lark_oapi.api.contact.v3 import GetUserRequest
from lark_oapi.api.im.v1 import (
    CreateMessageRequest,
    CreateMessageRequestBody,
    GetMessageRequest,
    PatchMessageRequest,
    PatchMessageRequestBody,
    ReplyMessageRequest,
    ReplyMessageRequestBody,
)
from lark_oapi.core.enum import AccessTokenType, HttpMethod
from lark_oapi.core.model import BaseRequest, RequestOption

from adapters.feishu.budgets import FeishuBudgets
from bot.platform import Budget, Priority, RateLimited, guarded

log = logging.getLogger(__name__)

APP_RATE_LIMIT = 99991400  # HTTP 429: an API's per-app windows
FREQUENCY_LIMIT = 230020  # a chat's or a card's own limit (HTTP 400)
TOKEN_REFUSED = frozenset({99991661, 99991663, 99991677})  # missing, invalid, expired token
CREDENTIALS_REFUSED = frozenset({10003, 10014})  # app id / secret wrong
WORKERS = 16  # concurrent SDK calls (each a blocking HTTP request)
TIMEOUT = 15.0  # seconds for one Open API call


@dataclass
class FeishuError(Exception):
    """An Open API call Feishu answered with an error (``code`` 0: no answer at all)."""

    code: int
    msg: str
    status: int = 0
    reset: float | None = None  # x-ogw-ratelimit-reset, seconds

    def __str__(self) -> str:
        return f"{self.code} {self.msg}".strip()

    @property
    def app_wide(self) -> bool:
        return self.code == APP_RATE_LIMIT or self.status == 429


def _reset(headers: Any) -> float | None:
    value = None
    if headers:
        value = headers.get("x-ogw-ratelimit-reset") or headers.get("X-Ogw-Ratelimit-Reset")
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


class TenantToken:
    """The app's tenant access token: fetched once, shared, renewed before it expires, and
    dropped at once when Feishu calls it invalid."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, app_id: str, app_secret: str) -> None:
        self.session = session
        self.url = f"{base_url}/open-apis/auth/v3/tenant_access_token/internal"
        self.app_id = app_id
        self._secret = app_secret
        self._token = ""
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        if self._token and time.monotonic() < self._renew_at:
            return self._token
        async with self._lock:
            if self._token and time.monotonic() < self._renew_at:
                return self._token
            async with self.session.post(
                self.url,
                json={"app_id": self.app_id, "app_secret": self._secret},
                timeout=aiohttp.ClientTimeout(total=TIMEOUT),
            ) as resp:
                try:
                    body = await resp.json(content_type=None)
                except (aiohttp.ContentTypeError, json.JSONDecodeError):
                    raise FeishuError(0, f"token: HTTP {resp.status}, no JSON", resp.status) from None
            if not isinstance(body, dict) or body.get("code") != 0 or not body.get("tenant_access_token"):
                code = body.get("code", 0) if isinstance(body, dict) else 0
                msg = body.get("msg", "") if isinstance(body, dict) else ""
                raise FeishuError(int(code or 0), f"tenant access token refused: {msg}", resp.status)
            ttl = float(body.get("expire") or 7200)
            self._token = str(body["tenant_access_token"])
            self._renew_at = time.monotonic() + ttl - min(300.0, ttl / 4)
            return self._token

    def forget(self, token: str) -> None:
        if self._token == token:
            self._token, self._renew_at = "", 0.0


@dataclass(frozen=True, slots=True)
class Download:
    data: bytes
    mime: str
    filename: str


class TooLarge(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Fetched:
    """A message read back by its id (``im/v1/messages/{id}``), in the shape a received one has:
    its kind, its content (a JSON string) and its mentions (``key``, ``id``: an open_id, ``name``)."""

    kind: str
    content: str
    mentions: list[dict[str, str]]
    deleted: bool = False


class FeishuApi:
    def __init__(
        self,
        *,
        base_url: str,
        app_id: str,
        app_secret: str,
        session: aiohttp.ClientSession,
        budgets: FeishuBudgets,
        scale: float = 1.0,
    ) -> None:
        self.base_url = base_url
        self.session = session
        self.budgets = budgets
        self.scale = scale
        self.token = TenantToken(session, base_url, app_id, app_secret)
        # The token is passed with each request (enable_set_token): the SDK fetches none itself.
        self.client = (
            lark.Client.builder()
            .app_id(app_id)
            .app_secret(app_secret)
            .domain(base_url)
            .enable_set_token(True)
            .timeout(TIMEOUT)
            .log_level(lark.LogLevel.WARNING)
            .build()
        )
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="feishu-api")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- the one call path ---
    def _retry_after(self, exc: Exception) -> float | None:
        if not isinstance(exc, FeishuError):
            return None
        if exc.app_wide:
            return exc.reset if exc.reset is not None else self.scale
        if exc.code == FREQUENCY_LIMIT:
            return self.scale  # a one-second window (no reset header comes with it)
        return None

    def has_room(self, api: str, *scope: Budget) -> bool:
        """Whether one more call could go at once (nobody waiting, every window open)."""
        return all(b.has_room() for b in (self.budgets.api(api), *scope))

    async def call(
        self,
        api: str,
        method: Callable[[Any, RequestOption], Any],
        request: Any,
        *,
        scope: Sequence[Budget] = (),
        priority: Priority = Priority.EDIT,
    ) -> Any:
        """One typed SDK call within budget; the response's ``data``. Raises ``FeishuError``,
        ``RateLimited`` (the right budget already paused) or ``Dropped`` (cosmetic, no room)."""
        return getattr(await self.respond(api, method, request, scope=scope, priority=priority), "data", None)

    async def respond(
        self,
        api: str,
        method: Callable[[Any, RequestOption], Any],
        request: Any,
        *,
        scope: Sequence[Budget] = (),
        priority: Priority = Priority.EDIT,
    ) -> Any:
        """``call``, answering the whole response (its ``raw`` too)."""
        app = self.budgets.api(api)

        def limited(exc: Exception) -> Sequence[Budget]:
            """The budget Feishu's answer speaks of holds back: the API's app-wide windows
            for a 429, the chat's or the card's own for 230020."""
            app_wide = isinstance(exc, FeishuError) and exc.app_wide
            return (app,) if app_wide or not scope else scope

        for attempt in range(2):
            token = await self.token.get()
            try:
                response = await guarded(
                    (app, *scope),
                    partial(self._run, method, request, token),
                    retry_after=self._retry_after,
                    name=f"feishu {api}",
                    method=api,
                    priority=priority,
                    pause=limited,
                )
                return response
            except FeishuError as exc:
                if exc.code in TOKEN_REFUSED and attempt == 0:
                    self.token.forget(token)  # renewed on the next try
                    continue
                raise
        raise AssertionError("unreachable")

    async def _run(self, method: Callable[[Any, RequestOption], Any], request: Any, token: str) -> Any:
        def blocking() -> Any:
            return method(request, RequestOption.builder().tenant_access_token(token).build())

        try:
            response = await asyncio.get_running_loop().run_in_executor(self._pool, blocking)
        except requests.RequestException as exc:
            raise FeishuError(0, f"no answer: {type(exc).__name__}") from exc
        except ValueError as exc:  # a body that is no JSON (a proxy's error page)
            raise FeishuError(0, "an answer that is no JSON") from exc
        if not response.success():
            raw = response.raw
            raise FeishuError(
                int(response.code or 0),
                str(response.msg or ""),
                int(getattr(raw, "status_code", 0) or 0),
                _reset(getattr(raw, "headers", None)),
            )
        return response

    # --- messages ---
    async def send(
        self,
        chat_id: str,
        msg_type: str,
        content: str,
        *,
        reply_to: str | None = None,
        in_thread: bool = False,
        uuid: str | None = None,
        priority: Priority = Priority.TEXT,
    ) -> str:
        """Reply to ``reply_to`` (in its thread with ``in_thread``), or post in the chat; the
        new message's id. ``uuid``: Feishu keeps one message per uuid for an hour."""
        scope = (self.budgets.chat(chat_id),)
        if reply_to:
            body = ReplyMessageRequestBody.builder().msg_type(msg_type).content(content).reply_in_thread(in_thread)
            if uuid:
                body = body.uuid(uuid)
            request = ReplyMessageRequest.builder().message_id(reply_to).request_body(body.build()).build()
            data = await self.call(
                "im.message.reply", self.client.im.v1.message.reply, request, scope=scope, priority=priority
            )
        else:
            body = CreateMessageRequestBody.builder().receive_id(chat_id).msg_type(msg_type).content(content)
            if uuid:
                body = body.uuid(uuid)
            request = CreateMessageRequest.builder().receive_id_type("chat_id").request_body(body.build()).build()
            data = await self.call(
                "im.message.create", self.client.im.v1.message.create, request, scope=scope, priority=priority
            )
        return str(data.message_id)

    async def message(self, message_id: str, *, priority: Priority = Priority.TEXT) -> Fetched:
        """One message by its id (scopes ``im:message:readonly``, and ``im:message.group_msg`` for
        a group's): what a reply's ``parent_id`` names. Only the app-wide windows apply."""
        request = GetMessageRequest.builder().message_id(message_id).user_id_type("open_id").build()
        data = await self.call("im.message.get", self.client.im.v1.message.get, request, priority=priority)
        item = next(iter(getattr(data, "items", None) or ()), None)
        if item is None:
            raise FeishuError(0, f"message {message_id} answered without an item")
        mentions = [
            {"key": str(m.key), "id": str(m.id or ""), "name": str(m.name or "")}
            for m in item.mentions or ()
            if getattr(m, "key", None)
        ]
        content = str(getattr(item.body, "content", None) or "")
        return Fetched(str(item.msg_type or ""), content, mentions, bool(item.deleted))

    async def patch(self, message_id: str, card: dict, *, priority: Priority = Priority.EDIT) -> None:
        """Rewrite a card message the bot sent (not a CardKit card: ``update_card`` for those)."""
        request = (
            PatchMessageRequest.builder()
            .message_id(message_id)
            .request_body(PatchMessageRequestBody.builder().content(_json(card)).build())
            .build()
        )
        await self.call(
            "im.message.patch",
            self.client.im.v1.message.patch,
            request,
            scope=(self.budgets.patch(message_id),),
            priority=priority,
        )

    # --- cards for one person ---
    async def send_ephemeral(
        self, chat_id: str, open_id: str, card: dict, *, priority: Priority = Priority.TEXT
    ) -> str:
        """Show ``card`` to ``open_id`` alone in group ``chat_id`` (at the group's top level,
        marked "Only visible to you"); the card's message id. lark-oapi has no model for this
        API: a ``BaseRequest`` on the same path, its answer read from ``raw``."""
        request = _post(
            "/open-apis/ephemeral/v1/send",
            {"chat_id": chat_id, "open_id": open_id, "msg_type": "interactive", "card": card},
        )
        response = await self.respond(
            "ephemeral.send", self.client.request, request, scope=(self.budgets.ephemeral(chat_id),), priority=priority
        )
        data = _raw_json(response).get("data")
        message_id = data.get("message_id") if isinstance(data, dict) else None
        if not message_id:
            raise FeishuError(0, "ephemeral card sent without a message id")
        return str(message_id)

    async def delete_ephemeral(self, message_id: str, *, priority: Priority = Priority.COSMETIC) -> None:
        """Take a card shown to one person away again."""
        request = _post("/open-apis/ephemeral/v1/delete", {"message_id": message_id})
        await self.call("ephemeral.delete", self.client.request, request, priority=priority)

    # --- CardKit ---
    async def create_card(self, card: dict, *, priority: Priority = Priority.TEXT) -> str:
        request = (
            CreateCardRequest.builder()
            .request_body(CreateCardRequestBody.builder().type("card_json").data(_json(card)).build())
            .build()
        )
        data = await self.call("cardkit.card.create", self.client.cardkit.v1.card.create, request, priority=priority)
        return str(data.card_id)

    async def _on_card(
        self, api: str, method: Callable[[Any, RequestOption], Any], request: Any, card_id: str, priority: Priority
    ) -> None:
        """A CardKit call on one card: within the API's windows and the card's own."""
        await self.call(api, method, request, scope=(self.budgets.card(card_id),), priority=priority)

    async def card_content(
        self, card_id: str, element_id: str, text: str, sequence: int, *, priority: Priority = Priority.EDIT
    ) -> None:
        request = (
            ContentCardElementRequest.builder()
            .card_id(card_id)
            .element_id(element_id)
            .request_body(ContentCardElementRequestBody.builder().content(text).sequence(sequence).build())
            .build()
        )
        await self._on_card(
            "cardkit.card_element.content", self.client.cardkit.v1.card_element.content, request, card_id, priority
        )

    async def update_card(
        self, card_id: str, card: dict, sequence: int, *, priority: Priority = Priority.FINAL
    ) -> None:
        request = (
            UpdateCardRequest.builder()
            .card_id(card_id)
            .request_body(
                UpdateCardRequestBody.builder()
                .card(Card.builder().type("card_json").data(_json(card)).build())
                .sequence(sequence)
                .build()
            )
            .build()
        )
        await self._on_card("cardkit.card.update", self.client.cardkit.v1.card.update, request, card_id, priority)

    async def card_settings(
        self, card_id: str, settings: dict, sequence: int, *, priority: Priority = Priority.FINAL
    ) -> None:
        request = (
            SettingsCardRequest.builder()
            .card_id(card_id)
            .request_body(SettingsCardRequestBody.builder().settings(_json(settings)).sequence(sequence).build())
            .build()
        )
        await self._on_card("cardkit.card.settings", self.client.cardkit.v1.card.settings, request, card_id, priority)

    async def add_elements(
        self, card_id: str, elements: list[dict], before: str, sequence: int, *, priority: Priority = Priority.COSMETIC
    ) -> None:
        request = (
            CreateCardElementRequest.builder()
            .card_id(card_id)
            .request_body(
                CreateCardElementRequestBody.builder()
                .type("insert_before")
                .target_element_id(before)
                .elements(_json(elements))
                .sequence(sequence)
                .build()
            )
            .build()
        )
        await self._on_card(
            "cardkit.card_element.create", self.client.cardkit.v1.card_element.create, request, card_id, priority
        )

    async def delete_element(
        self, card_id: str, element_id: str, sequence: int, *, priority: Priority = Priority.COSMETIC
    ) -> None:
        request = (
            DeleteCardElementRequest.builder()
            .card_id(card_id)
            .element_id(element_id)
            .request_body(DeleteCardElementRequestBody.builder().sequence(sequence).build())
            .build()
        )
        await self._on_card(
            "cardkit.card_element.delete", self.client.cardkit.v1.card_element.delete, request, card_id, priority
        )

    # --- people ---
    async def user_name(self, open_id: str) -> str | None:
        """A person's display name (scope ``contact:user.base:readonly``), or None."""
        request = GetUserRequest.builder().user_id(open_id).user_id_type("open_id").build()
        data = await self.call("contact.user.get", self.client.contact.v3.user.get, request, priority=Priority.FINAL)
        user = getattr(data, "user", None)
        return getattr(user, "name", None) or None

    # --- plain HTTP: the bot's identity, downloads ---
    async def _get(self, path: str, api: str, **params: str) -> aiohttp.ClientResponse:
        token = await self.token.get()

        async def request() -> aiohttp.ClientResponse:
            resp = await self.session.get(
                f"{self.base_url}{path}",
                params=params or None,
                headers={"Authorization": f"Bearer {token}"},
                timeout=aiohttp.ClientTimeout(total=60),
            )
            if not resp.ok:
                try:
                    body = await resp.json(content_type=None)
                except (aiohttp.ContentTypeError, json.JSONDecodeError):
                    body = {}
                finally:
                    resp.release()
                code = int(body.get("code") or 0) if isinstance(body, dict) else 0
                msg = str(body.get("msg") or f"HTTP {resp.status}") if isinstance(body, dict) else ""
                if code in TOKEN_REFUSED:
                    self.token.forget(token)
                raise FeishuError(code, msg, resp.status, _reset(resp.headers))
            return resp

        app = self.budgets.api(api)
        try:
            return await guarded(
                (app,),
                request,
                retry_after=self._retry_after,
                name=f"feishu {api}",
                method=api,
                priority=Priority.FINAL,
            )
        except RateLimited as exc:
            app.pause(exc.retry_after)
            raise

    async def bot_identity(self) -> tuple[str, str]:
        """The bot's own open_id and name (how its @mentions are told from others)."""
        resp = await self._get("/open-apis/bot/v3/info", "bot.info")
        try:
            body = await resp.json(content_type=None)
        finally:
            resp.release()
        bot = body.get("bot") if isinstance(body, dict) else None
        if not isinstance(bot, dict) or body.get("code") != 0 or not bot.get("open_id"):
            raise FeishuError(int(body.get("code") or 0) if isinstance(body, dict) else 0, "bot info missing")
        return str(bot["open_id"]), str(bot.get("app_name") or "bot")

    async def download(self, message_id: str, key: str, kind: str, limit: int) -> Download:
        """A message's image or file; ``TooLarge`` past ``limit`` bytes (read no further)."""
        resp = await self._get(
            f"/open-apis/im/v1/messages/{message_id}/resources/{key}", "im.message_resource.get", type=kind
        )
        try:
            mime = resp.headers.get("Content-Type", "application/octet-stream").split(";")[0].strip().lower()
            filename = _filename(resp.headers.get("Content-Disposition", ""))
            declared = resp.content_length
            if declared is not None and declared > limit:
                raise TooLarge(declared)
            chunks, size = [], 0
            async for chunk in resp.content.iter_chunked(256 * 1024):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(size)
                chunks.append(chunk)
        finally:
            resp.release()
        return Download(b"".join(chunks), mime, filename)


def _post(uri: str, body: dict) -> BaseRequest:
    return (
        BaseRequest.builder()
        .http_method(HttpMethod.POST)
        .uri(uri)
        .token_types({AccessTokenType.TENANT})
        .body(body)
        .build()
    )


def _raw_json(response: Any) -> dict:
    raw = getattr(getattr(response, "raw", None), "content", None)
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_FILENAME = re.compile(r"filename\*?=(?:UTF-8'')?\"?([^\";]+)\"?", re.IGNORECASE)


def _filename(disposition: str) -> str:
    match = _FILENAME.search(disposition or "")
    return unquote(match.group(1)) if match else ""
