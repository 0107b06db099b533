"""A protocol-faithful fake of the Feishu / Lark Open Platform, for tests that drive the real
``lark-oapi`` SDK (``lark.Client.builder().domain(fake.base_url)``, ``lark.ws.Client(…,
domain=fake.base_url)``).

An ``aiohttp.web`` server on 127.0.0.1 (port 0) with: tenant / app access tokens (expiring);
im v1 message create / reply (``reply_in_thread``, idempotent ``uuid`` for 1 h) / edit (20
times, then 230072) / card patch / get by id (``data.items[0]``: ``msg_type``, ``body.content``
as a JSON string, ``mentions`` with a plain ``id``), message resources and chat info; CardKit v1 card
entities (``feishu_cards.py``: JSON 2.0, streaming mode closed by itself after 10 minutes,
strictly increasing ``sequence``, 30 KB); cards shown to one person in a group (ephemeral v1,
below); the long connection (``feishu_ws.py``); events and HTTP callback delivery
(``feishu_events.py``). Every call is recorded (``calls``), every message kept per chat
(``transcript``: what everyone sees; ``seen_by``: what one person sees), every card with each
update (``cards``).

Cards for one person (``POST /open-apis/ephemeral/v1/send`` ``{"chat_id", "open_id", "msg_type":
"interactive", "card": {…}}`` → ``data.message_id``; ``POST /open-apis/ephemeral/v1/delete``
``{"message_id"}``), as documented: only in an ordinary group (``chat_mode`` group), the bot a
member, the person a member (anyone who wrote in the chat is one: ``FakeChat.members``), cards
only, no thread or reply (the card sits at the group's top level), 40 a second per group besides
the API's 50/s and 1,000/min; it cannot be patched, replied to or fetched as a message. Kept
as a ``FakeMessage`` with ``visible_to`` (``ephemeral_cards``, ``seen_by``). Feishu documents no
error codes for its refusals; these are assumed: a topic group or a private chat → 230001 (an
invalid parameter), a person not in the group → 230001, msg_type other than interactive →
230054, the group's 40/s → 230020, an unknown message to delete → 230001; the bot not in the
group → 230002 and a card over 30 KB → 230025, as for sends.

Limits, sliding windows scaled by ``time_scale`` (1.0 = Feishu's own seconds; tests shrink it):
- per API per app 50/s and 1,000/min: HTTP 429, code 99991400, headers ``x-ogw-ratelimit-limit``
  and ``x-ogw-ratelimit-reset`` (seconds to wait; a decimal when time is scaled);
- send + reply 5/s per user (p2p) and per group, a card message patched 5/s, CardKit 10
  operations/s per card: HTTP 400, code 230020 "This operation triggers the frequency limit."
  (the code Feishu's message pages give; peers' CardKit code reports it for cards too), no
  reset header.
``rate_limited`` lists every refused call of either kind; tests assert it is empty.

Error codes come from Feishu's API reference pages (HTTP 400 + code unless noted): 230001
invalid content (also an unknown ``message_id``), 230002 bot not in the chat, 230027 lacking a
scope (reading a group's message without ``im:message.group_msg``), 230011 a recalled message
read by its id (assumed: Feishu's table names it for message operations, not this one), 230025
content too long (text 150 KB, post / card 30 KB), 230054 wrong message type for the operation,
230071 not the sender, 230072 edited 20 times (edit) / merged messages cannot be replied in a
thread (reply), 230099 card content failed, 234003 file not in the message, 99991663 invalid
token, 99991677 token expired, 10014 app secret invalid; CardKit codes in ``feishu_cards.py``
(200860 card over 30 KB, 300309 streaming closed, 200850 streaming timeout, 300317 sequence out
of order).

What lark-oapi 1.7.5 does (read in its source, shown by tests/test_feishu_fake.py)
---------------------------------------------------------------------------------------
1. Import cost: any ``import lark_oapi…`` runs the package ``__init__``, which loads every API's
   models: ~3.5 s and +160 MB RSS on this machine. Import it only when Feishu is configured.
2. The loop trap: ``lark_oapi/ws/client.py`` binds a module global ``loop`` at import
   (``asyncio.get_event_loop()``); ``Client.start()`` runs ``loop.run_until_complete(…)`` on it
   and then blocks for ever, and every coroutine of the client is scheduled on that global.
   Imported inside a running loop, ``start()`` fails "This event loop is already running".
   There is no ``start_async``. What works (``SdkLongConnection`` in the tests): a thread that
   makes a new loop, ``asyncio.set_event_loop(loop)``, sets ``lark_oapi.ws.client.loop = loop``,
   constructs the ``lark.ws.Client`` there (its constructor schedules a cache-cleaning task on
   the current loop) and calls ``start()``. The global is shared: one ws client per process.
3. Stopping: there is no public stop. Cancel every task of that loop from outside
   (``loop.call_soon_threadsafe``); ``start()`` then raises CancelledError in the thread, which
   runs ``client._disconnect()`` (a clean close frame), gathers the rest and closes the loop.
   The SDK's own FeishuChannel.stop uses the same private ``_disconnect``. Disconnecting while
   the receive task still runs only triggers a reconnect.
4. Acks: each frame gets a task, but the handler registered on ``EventDispatcherHandler`` is
   called synchronously on the SDK's loop, and the ack (the same frame, header ``biz_rt``,
   payload ``{"code": 200}``) is written only after it returns. A slow handler delays that ack,
   the pings and every later event; past 3 s Feishu pushes the event again (same event_id; the
   handler runs twice). Hand off with ``bot_loop.call_soon_threadsafe(…)`` and return. A handler
   exception is logged and acked ``{"code": 500}`` (the fake then pushes again: assumed, not
   documented by Feishu). A callback handler's return (``P2CardActionTriggerResponse``: toast /
   card) travels back base64-JSON in the ack's ``data``. Frames typed ``card`` get no ack and
   never reach a handler (card callbacks arrive as ``event`` frames). A payload split over
   frames (``sum`` > 1) is reassembled before the handler.
5. Reconnect: the server sets it, in the endpoint's ``ClientConfig`` and again in every pong:
   ``ReconnectCount`` (-1 = for ever), ``ReconnectInterval`` (120 s between tries),
   ``ReconnectNonce`` (a random 0–30 s before the first try), ``PingInterval`` (120 s); the only
   local switch is ``auto_reconnect`` (default True). On a lost socket: ``on_reconnecting()``,
   the jitter, then the endpoint POST (blocking ``requests`` on the SDK loop) and the connect,
   once per interval, ``on_reconnected()`` on success. A ClientException while reconnecting
   (endpoint code other than 0 / 1 / 1000040343: a rotated secret 10014, the 50-connection cap
   1000040350) ends reconnecting for good, silently, while ``start()`` keeps blocking. At the
   first ``start()`` a ClientException is raised; other errors loop inside ``start()`` until it
   connects. Half-open sockets are noticed only by websockets' own keepalive (20 s + 20 s).
   So the adapter needs a watchdog (``on_reconnecting`` without ``on_reconnected`` for long →
   rebuild the client) and a readiness flag.
6. HTTP: sync methods use ``requests`` without a session (a new connection per call); the
   ``a…`` coroutines use a new ``httpx.AsyncClient`` per call AND fetch the tenant token with
   blocking ``requests`` inside the event loop (with a fake on the same loop: a deadlock; in
   production: a stalled loop). Call the sync methods through ``asyncio.to_thread``. The token
   is cached per app_id for the whole process and refreshed 10 minutes before expiry; it is
   never dropped on 99991663 / 99991677 (``lark_oapi.core.token.TokenManager.cache`` holds it
   under ``self_tenant_token:{app_id}``). A wrong secret raises ``ObtainAccessTokenException``
   (``.code`` 10014). Nothing is retried.
7. Errors and 429: any JSON answer becomes the response object, never an exception: check
   ``resp.success()`` / ``resp.code`` / ``resp.msg``; ``resp.raw.status_code``;
   ``resp.raw.headers`` is a plain dict (sync: the server's spelling; async: lower case), so
   ``resp.raw.headers.get("x-ogw-ratelimit-reset")`` (Feishu sends lower case). A non-JSON body
   (a proxy's HTML 502) raises JSONDecodeError out of the call. ``lark_oapi.channel.errors``
   files 99991400 under permission errors and 230020 under "target revoked": Feishu's docs say
   both are rate limits.
8. Webhook: ``EventDispatcherHandler.do(RawRequest)`` decrypts, checks the token, answers
   ``url_verification``, checks the signature (only with an encrypt key) and runs the handler
   synchronously; a bad token, a bad signature or a handler exception all answer HTTP 500
   ``{"msg": …}`` (refuse them yourself first to answer 4xx). It reads ``X-Lark-Signature`` etc.
   with exact case: give ``RawRequest.headers`` a case-insensitive mapping (starlette's
   ``request.headers``), not ``dict(request.headers)``. The timestamp's age is not checked.
9. Streaming card (accepted here, as documented): create ``POST /open-apis/cardkit/v1/cards``
   ``{"type": "card_json", "data": json.dumps(card)}`` with ``card = {"schema": "2.0", "config":
   {"streaming_mode": true, "update_multi": true, "summary": {"content": "…"}, "streaming_config":
   {…optional}}, "body": {"elements": [{"tag": "markdown", "content": "…", "element_id":
   "answer"}]}}`` (element_id: a letter, then letters / digits / _, ≤ 20; unique); send it as
   ``msg_type="interactive"``, content ``{"type": "card", "data": {"card_id": …}}``; then
   ``PUT …/cards/{card_id}/elements/answer/content`` ``{"content": <the whole text so far, 1 to
   100,000 chars>, "sequence": n}``; close with ``PATCH …/cards/{card_id}/settings``
   ``{"settings": json.dumps({"config": {"streaming_mode": false}}), "sequence": n + 1}``.
   Sequence: one counter per card shared by every card operation (content, settings, update,
   element add / update / patch / delete), an int32 ≥ 1, strictly greater than the last one
   accepted (gaps allowed; a refused operation does not use its number here, which Feishu does
   not document: always take last + 1). Equal or lower → 300317. Streaming closes itself
   600 s after it opened: the next write gets 200850 "card streaming timeout", later ones 300309
   "streaming mode is closed" (as after the bot's own close); reopening via settings works.
"""

from __future__ import annotations

import itertools
import json
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiohttp import web

from tests.fakes.feishu_cards import CardError, CardUpdate, FakeCard, StreamingRules, validate_card
from tests.fakes.feishu_events import EventFactory, HttpDelivery, post_event
from tests.fakes.feishu_model import (
    ApiError,
    Call,
    FakeChat,
    FakeMessage,
    FakeUser,
    FeishuLimits,
    Resource,
    Windows,
)
from tests.fakes.feishu_ws import LongConnection, WsDelivery

TEXT_MAX_BYTES = 150 * 1024
CARD_OR_POST_MAX_BYTES = 30 * 1024
MAX_EDITS = 20
RECEIVE_ID_TYPES = ("open_id", "user_id", "union_id", "chat_id")
RATE_LIMIT_CODES = (99991400, 230020)


Handler = Callable[[web.Request, Any], Awaitable[Any]]


class FakeFeishu:
    """``async with FakeFeishu(time_scale=0.01) as fake: … fake.base_url …``."""

    def __init__(
        self,
        *,
        time_scale: float = 1.0,
        app_id: str | None = None,
        app_secret: str = "fake-app-secret",
        limits: FeishuLimits | None = None,
        token_ttl: int = 7200,
        streaming_idle_ttl: float | None = None,
        verification_token: str = "fake-verification-token",
        encrypt_key: str | None = None,
        ack_timeout: float = 3.0,
        max_pushes: int = 4,
    ) -> None:
        # A fresh app id per fake: the SDK caches tokens per app_id for the whole process.
        self.app_id = app_id or f"cli_{secrets.token_hex(8)}"
        self.app_secret = app_secret
        self.time_scale = time_scale
        self.limits = limits or FeishuLimits()
        self.token_ttl = token_ttl
        idle = None if streaming_idle_ttl is None else streaming_idle_ttl * time_scale
        self.streaming = StreamingRules(ttl=600 * time_scale, idle_ttl=idle)
        self.verification_token, self.encrypt_key = verification_token, encrypt_key
        self.tenant_key = secrets.token_hex(8)
        self.bot = FakeUser("Copy Helper", self.new_key("ou"), "", self.new_key("on"), is_bot=True)
        self.contacts_readable = True  # the app holds contact:user.base:readonly
        self.cardkit_granted = True  # the app holds cardkit:card:write
        self.group_messages_readable = True  # the app holds im:message.group_msg (GET a group's message)
        self.calls: list[Call] = []
        self.users: dict[str, FakeUser] = {}
        self.chats: dict[str, FakeChat] = {}
        self.messages: dict[str, FakeMessage] = {}
        self.cards: dict[str, FakeCard] = {}
        self.http_deliveries: list[HttpDelivery] = []
        self.events = EventFactory(self)
        self.ws = LongConnection(
            app_id=self.app_id,
            app_secret=app_secret,
            time_scale=time_scale,
            ack_timeout=ack_timeout,
            max_pushes=max_pushes,
        )
        self._tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self._uuids: dict[tuple[str, str], tuple[str, float]] = {}  # (api, uuid) -> (message_id, at)
        self._windows = Windows()
        self._card_ids = itertools.count(7_355_372_766_134_157_313)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # --- lifecycle ---
    async def start(self) -> FakeFeishu:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        auth = "/open-apis/auth/v3"
        im, kit = "/open-apis/im/v1", "/open-apis/cardkit/v1/cards"
        routes: list[tuple[str, str, str, Handler, bool]] = [
            ("POST", f"{auth}/tenant_access_token/internal", "auth.tenant_access_token", self._tenant_token, False),
            ("POST", f"{auth}/app_access_token/internal", "auth.app_access_token", self._app_token, False),
            ("POST", f"{im}/messages", "im.message.create", self._create_message, True),
            ("POST", f"{im}/messages/{{message_id}}/reply", "im.message.reply", self._reply, True),
            ("PUT", f"{im}/messages/{{message_id}}", "im.message.update", self._update_message, True),
            ("PATCH", f"{im}/messages/{{message_id}}", "im.message.patch", self._patch_message, True),
            ("GET", f"{im}/messages/{{message_id}}", "im.message.get", self._get_message, True),
            (
                "GET",
                f"{im}/messages/{{message_id}}/resources/{{file_key}}",
                "im.message_resource.get",
                self._resource,
                True,
            ),
            ("GET", f"{im}/chats/{{chat_id}}", "im.chat.get", self._chat, True),
            ("POST", "/open-apis/ephemeral/v1/send", "ephemeral.send", self._send_ephemeral, True),
            ("POST", "/open-apis/ephemeral/v1/delete", "ephemeral.delete", self._delete_ephemeral, True),
            ("GET", "/open-apis/bot/v3/info", "bot.info", self._bot_info, True),
            ("GET", "/open-apis/contact/v3/users/{user_id}", "contact.user.get", self._contact_user, True),
            ("POST", kit, "cardkit.card.create", self._create_card, True),
            ("PUT", f"{kit}/{{card_id}}", "cardkit.card.update", self._card_op("update"), True),
            ("PATCH", f"{kit}/{{card_id}}/settings", "cardkit.card.settings", self._card_op("settings"), True),
            (
                "PUT",
                f"{kit}/{{card_id}}/elements/{{element_id}}/content",
                "cardkit.card_element.content",
                self._card_op("content"),
                True,
            ),
            ("POST", f"{kit}/{{card_id}}/elements", "cardkit.card_element.create", self._card_op("element.add"), True),
            (
                "PUT",
                f"{kit}/{{card_id}}/elements/{{element_id}}",
                "cardkit.card_element.update",
                self._card_op("element.update"),
                True,
            ),
            (
                "PATCH",
                f"{kit}/{{card_id}}/elements/{{element_id}}",
                "cardkit.card_element.patch",
                self._card_op("element.patch"),
                True,
            ),
            (
                "DELETE",
                f"{kit}/{{card_id}}/elements/{{element_id}}",
                "cardkit.card_element.delete",
                self._card_op("element.delete"),
                True,
            ),
        ]
        for method, path, api, handler, authed in routes:
            app.router.add_route(method, path, self._endpoint(api, handler, authed))
        self.ws.mount(app)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        self.ws.base_ws_url = f"ws://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        await self.ws.drop_connections(abrupt=False)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeFeishu:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- the world tests set up ---
    @staticmethod
    def new_key(prefix: str) -> str:
        sizes = {"om": 32, "oc": 32, "ou": 32, "on": 32, "omt": 16, "img": 24, "file": 24}
        return (
            f"{prefix}_v3_{secrets.token_hex(12)}"
            if prefix in ("img", "file")
            else f"{prefix}_{secrets.token_hex(sizes.get(prefix, 16) // 2)}"
        )

    def user(self, name: str) -> FakeUser:
        user = FakeUser(name, self.new_key("ou"), secrets.token_hex(4), self.new_key("on"))
        self.users[user.open_id] = user
        return user

    def p2p_chat(self, user: FakeUser) -> FakeChat:
        existing = next((c for c in self.chats.values() if c.chat_type == "p2p" and c.user == user), None)
        if existing:
            return existing
        chat = FakeChat(self.new_key("oc"), "p2p", "", "p2p", user=user, members={user.open_id})
        self.chats[chat.chat_id] = chat
        return chat

    def group_chat(self, name: str, *, topic: bool = False, members: tuple[FakeUser, ...] = ()) -> FakeChat:
        chat = FakeChat(
            self.new_key("oc"), "group", name, "topic" if topic else "group", members={u.open_id for u in members}
        )
        self.chats[chat.chat_id] = chat
        return chat

    def store_user_message(
        self,
        chat: FakeChat,
        sender: FakeUser,
        msg_type: str,
        content: str,
        *,
        parent: FakeMessage | None = None,
        in_thread: bool = False,
    ) -> FakeMessage:
        message = FakeMessage(self.new_key("om"), chat.chat_id, msg_type, content, sender.open_id, False, _ms())
        self._place(message, chat, parent, in_thread)
        chat.members.add(sender.open_id)  # writing there makes them a member
        return message

    def recall(self, message: FakeMessage) -> None:
        """Its sender takes ``message`` back (撤回): it can no longer be read by its id."""
        message.recalled = True

    def add_resource(
        self,
        message: FakeMessage,
        key: str,
        data: bytes,
        *,
        kind: Literal["image", "file"],
        content_type: str,
        file_name: str = "",
    ) -> Resource:
        resource = Resource(key, kind, data, content_type, file_name or f"{key}.{content_type.rpartition('/')[2]}")
        message.resources[key] = resource
        return resource

    # --- what tests read ---
    def calls_to(self, api: str) -> list[Call]:
        return [c for c in self.calls if c.api == api]

    @property
    def rate_limited(self) -> list[Call]:
        return [c for c in self.calls if c.code in RATE_LIMIT_CODES]

    @property
    def count_429(self) -> int:
        return sum(1 for c in self.calls if c.status == 429)

    def transcript(self, chat_id: str) -> list[FakeMessage]:
        """The chat as everyone in it sees it (cards for one person left out)."""
        return [m for m in self.messages.values() if m.chat_id == chat_id and m.visible_to is None]

    def bot_messages(self, chat_id: str | None = None) -> list[FakeMessage]:
        """The bot's messages everyone sees (cards for one person left out)."""
        return [
            m for m in self.messages.values() if m.from_bot and chat_id in (None, m.chat_id) and m.visible_to is None
        ]

    def thread(self, root_id: str) -> list[FakeMessage]:
        return [m for m in self.messages.values() if root_id in (m.message_id, m.root_id) and m.visible_to is None]

    def seen_by(self, chat_id: str, user: FakeUser) -> list[FakeMessage]:
        """The chat as ``user`` sees it, in order: what everyone sees and the cards for them alone."""
        return [m for m in self.messages.values() if m.chat_id == chat_id and m.visible_to in (None, user.open_id)]

    def ephemeral_cards(self, chat_id: str | None = None, user: FakeUser | None = None) -> list[FakeMessage]:
        """Cards shown to one person (not deleted), in order; of one chat, of one person."""
        return [
            m
            for m in self.messages.values()
            if m.visible_to is not None
            and chat_id in (None, m.chat_id)
            and (user is None or m.visible_to == user.open_id)
        ]

    def cards_left_generating(self) -> list[FakeCard]:
        """Cards whose streaming mode the bot never closed (the chat list shows "[生成中...]")."""
        now = time.monotonic()
        return [c for c in self.cards.values() if c.generating(now)]

    # --- events to the bot ---
    async def push_event(
        self, event: dict, *, parts: int = 1, frame_type: Literal["event", "card"] = "event"
    ) -> WsDelivery:
        return await self.ws.push(event, parts=parts, frame_type=frame_type)

    async def deliver_http(
        self,
        url: str,
        event: dict,
        *,
        encrypt_key: str | None = None,
        verification_token: str | None = None,
        signature_key: str | None = None,
        answer_within: float = 3.0,
    ) -> HttpDelivery:
        """POST a schema-2.0 event (or a url_verification) to the bot's callback URL; an answer
        later than ``answer_within`` wall-clock seconds (Feishu waits 3) is recorded as none."""
        key = self.encrypt_key if encrypt_key is None else encrypt_key  # "" forces a plain body
        payload = json.loads(json.dumps(event))
        if verification_token is not None:
            if "header" in payload:
                payload["header"]["token"] = verification_token
            else:
                payload["token"] = verification_token
        delivery = await post_event(
            url, payload, encrypt_key=key or None, signature_key=signature_key, answer_within=answer_within
        )
        self.http_deliveries.append(delivery)
        return delivery

    # --- plumbing ---
    def _scaled(self, seconds: float) -> float:
        return seconds * self.time_scale

    def _endpoint(self, api: str, handler: Handler, authed: bool) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def serve(request: web.Request) -> web.Response:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            call = Call(api, request.method, request.path, dict(request.query), body, time.monotonic())
            self.calls.append(call)
            log_id = secrets.token_hex(16).upper()
            try:
                if authed:
                    self._check_token(request)
                    self._take_api(api)
                result = await handler(request, body)
                if isinstance(result, web.Response):
                    return result
                if isinstance(result, tuple):  # deduplicated by uuid
                    result, call.deduplicated = result[0], True
                payload = (
                    result
                    if isinstance(result, dict) and "code" in result
                    else {"code": 0, "msg": "success", "data": {} if result is None else result}
                )
                return web.json_response(payload, headers={"X-Tt-Logid": log_id})
            except (ApiError, CardError) as exc:
                status = exc.status if isinstance(exc, ApiError) else 400
                headers = exc.headers if isinstance(exc, ApiError) else {}
                call.status, call.code, call.msg = status, exc.code, exc.msg
                if "x-ogw-ratelimit-reset" in headers:
                    call.reset = float(headers["x-ogw-ratelimit-reset"])
                payload = {
                    "code": exc.code,
                    "msg": exc.msg,
                    "error": {
                        "log_id": log_id,
                        "troubleshooter": f"排查建议查看: https://open.feishu.cn/search?q={log_id}",
                    },
                }
                return web.json_response(payload, status=status, headers={"X-Tt-Logid": log_id, **headers})

        return serve

    async def _not_found(self, request: web.Request) -> web.Response:
        self.calls.append(
            Call(
                "unknown",
                request.method,
                request.path,
                dict(request.query),
                None,
                time.monotonic(),
                404,
                404,
                "404 page not found",
            )
        )
        return web.json_response({"code": 404, "msg": "404 page not found"}, status=404)

    def _check_token(self, request: web.Request) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expires = self._tokens.get(token) if scheme == "Bearer" else None
        if expires is None:
            raise ApiError(
                400, 99991663, "Invalid access token for authorization. Please make a request with token attached."
            )
        if time.monotonic() >= expires:
            raise ApiError(400, 99991677, "Authentication token expired.")

    def _take_api(self, api: str) -> None:
        now = time.monotonic()
        for limit, window in ((self.limits.api_per_second, 1.0), (self.limits.api_per_minute, 60.0)):
            wait = self._windows.take(("api", api, window), limit, self._scaled(window), now)
            if wait:
                reset = str(math.ceil(wait)) if self.time_scale == 1 else f"{wait:.3f}"
                raise ApiError(
                    429,
                    99991400,
                    "request trigger frequency limit",
                    {"x-ogw-ratelimit-limit": str(limit), "x-ogw-ratelimit-reset": reset},
                )

    def _take(self, key: tuple, limit: int) -> None:
        if self._windows.take(key, limit, self._scaled(1.0), time.monotonic()):
            raise ApiError(400, 230020, "This operation triggers the frequency limit.")

    def _issue(self, prefix: str) -> tuple[str, int]:
        token = f"{prefix}-{secrets.token_hex(16)}"
        ttl = max(1, round(self.token_ttl * self.time_scale))
        self._tokens[token] = time.monotonic() + ttl
        return token, ttl

    def _check_app(self, body: Any) -> None:
        body = body or {}
        if body.get("app_id") != self.app_id:
            raise ApiError(400, 10003, "invalid param")
        if body.get("app_secret") != self.app_secret:
            raise ApiError(400, 10014, "app secret invalid")

    async def _tenant_token(self, request: web.Request, body: Any) -> dict:
        self._check_app(body)
        token, ttl = self._issue("t")
        return {"code": 0, "msg": "ok", "tenant_access_token": token, "expire": ttl}

    async def _app_token(self, request: web.Request, body: Any) -> dict:
        self._check_app(body)
        token, ttl = self._issue("a")
        tenant, _ = self._issue("t")
        return {"code": 0, "msg": "ok", "app_access_token": token, "tenant_access_token": tenant, "expire": ttl}

    # --- im v1 ---
    def _message_or_fail(self, message_id: str) -> FakeMessage:
        message = self.messages.get(message_id)
        if message is None or message.visible_to is not None:  # a card for one person is no message here
            raise ApiError(400, 230001, "Your request contains an invalid request parameter: message not found.")
        return message

    def _chat_for_send(self, receive_id_type: str, receive_id: str) -> FakeChat:
        if receive_id_type not in RECEIVE_ID_TYPES:
            raise ApiError(400, 99992402, "field validation failed: receive_id_type")
        if receive_id_type == "chat_id":
            chat = self.chats.get(receive_id)
            if chat is None:
                raise ApiError(400, 230001, "Your request contains an invalid request parameter: chat not found.")
        else:
            user = next((u for u in self.users.values() if getattr(u, receive_id_type) == receive_id), None)
            if user is None:
                raise ApiError(400, 230013, "Bot has NO availability to this user.")
            chat = self.p2p_chat(user)
        return chat

    def _check_writable(self, chat: FakeChat) -> None:
        if not chat.bot_member:
            raise ApiError(400, 230002, "The bot can not be outside the group.")
        key = ("user", chat.user.open_id) if chat.chat_type == "p2p" and chat.user else ("group", chat.chat_id)
        self._take(("chat", *key), self.limits.chat_per_second)

    def _content(self, msg_type: Any, content: Any) -> tuple[str, FakeCard | None]:
        """Validate a message body as Feishu does; the card entity it refers to, if any."""
        if not isinstance(msg_type, str) or not isinstance(content, str):
            raise ApiError(400, 99992402, "field validation failed: msg_type / content")
        try:
            body = json.loads(content)
        except ValueError:
            raise ApiError(400, 230001, "Your request contains an invalid request parameter: content.") from None
        size = len(content.encode())
        if size > (TEXT_MAX_BYTES if msg_type == "text" else CARD_OR_POST_MAX_BYTES):
            raise ApiError(400, 230025, "The length of the message content reaches its limit.")
        if not isinstance(body, dict) or (msg_type == "text" and not isinstance(body.get("text"), str)):
            raise ApiError(400, 230001, "Your request contains an invalid request parameter: content.")
        if msg_type == "interactive" and body.get("type") == "card":
            card = self.cards.get(str((body.get("data") or {}).get("card_id")))
            if card is None:
                raise ApiError(400, 230099, "Failed to create card content: card entity not found.")
            return msg_type, card
        return msg_type, None

    def _deduplicated(self, api: str, uuid: Any) -> FakeMessage | None:
        if not uuid:
            return None
        seen = self._uuids.get((api, uuid))
        if seen and time.monotonic() - seen[1] < self._scaled(3600):
            return self.messages[seen[0]]
        return None

    def _send(self, chat: FakeChat, body: dict, api: str, parent: FakeMessage | None, in_thread: bool) -> FakeMessage:
        msg_type, card = self._content(body.get("msg_type"), body.get("content"))
        self._check_writable(chat)
        message = FakeMessage(
            self.new_key("om"),
            chat.chat_id,
            msg_type,
            body["content"],
            self.app_id,
            True,
            _ms(),
            uuid=body.get("uuid"),
            card=card,
        )
        self._place(message, chat, parent, in_thread)
        if card is not None:
            card.message_ids.append(message.message_id)
        if message.uuid:
            self._uuids[(api, message.uuid)] = (message.message_id, time.monotonic())
        return message

    def _place(self, message: FakeMessage, chat: FakeChat, parent: FakeMessage | None, in_thread: bool) -> None:
        if parent is not None:
            message.root_id = parent.root_id or parent.message_id
            message.parent_id = parent.message_id
            if in_thread or parent.thread_id or chat.mode == "topic":
                message.thread_id = parent.thread_id or self.new_key("omt")
                if not parent.thread_id:
                    parent.thread_id = message.thread_id
        elif chat.mode == "topic":
            message.thread_id = self.new_key("omt")  # every post in a topic group opens a topic
        self.messages[message.message_id] = message

    def _api_message(self, message: FakeMessage) -> dict:
        out: dict[str, Any] = {
            "message_id": message.message_id,
            "msg_type": message.msg_type,
            "chat_id": message.chat_id,
            "create_time": str(message.create_time),
            "update_time": str(message.create_time),
            "deleted": False,
            "updated": message.updated,
            "body": {"content": message.content},
            "sender": {
                "id": message.sender_id,
                "id_type": "app_id" if message.from_bot else "open_id",
                "sender_type": "app" if message.from_bot else "user",
                "tenant_key": self.tenant_key,
            },
        }
        for key in ("root_id", "parent_id", "thread_id"):
            if getattr(message, key):
                out[key] = getattr(message, key)
        if message.mentions:
            out["mentions"] = [
                {
                    "key": m["key"],
                    "id": m["id"]["open_id"],
                    "id_type": "open_id",
                    "name": m["name"],
                    "tenant_key": self.tenant_key,
                }
                for m in message.mentions
            ]
        return out

    async def _create_message(self, request: web.Request, body: Any) -> Any:
        body = body or {}
        previous = self._deduplicated("im.message.create", body.get("uuid"))
        if previous:
            return self._api_message(previous), True
        chat = self._chat_for_send(request.query.get("receive_id_type", ""), str(body.get("receive_id", "")))
        return self._api_message(self._send(chat, body, "im.message.create", None, False))

    async def _reply(self, request: web.Request, body: Any) -> Any:
        body = body or {}
        previous = self._deduplicated("im.message.reply", body.get("uuid"))
        if previous:
            return self._api_message(previous), True
        parent = self._message_or_fail(request.match_info["message_id"])
        in_thread = body.get("reply_in_thread") is True
        if in_thread and parent.msg_type == "merge_forward":
            raise ApiError(400, 230072, "Aggregated messages do not support reply in thread.")
        chat = self.chats[parent.chat_id]
        return self._api_message(self._send(chat, body, "im.message.reply", parent, in_thread))

    async def _update_message(self, request: web.Request, body: Any) -> Any:
        body = body or {}
        message = self._message_or_fail(request.match_info["message_id"])
        if message.msg_type not in ("text", "post") or body.get("msg_type") not in ("text", "post"):
            raise ApiError(400, 230054, "This operation is not supported for this message type.")
        if not message.from_bot:
            raise ApiError(400, 230071, "The operator is not the sender of the message.")
        if message.edits >= MAX_EDITS:
            raise ApiError(400, 230072, "The message has reached the number of times it can be edited.")
        msg_type, _ = self._content(body["msg_type"], body.get("content"))
        message.msg_type, message.content = msg_type, body["content"]
        message.edits, message.updated = message.edits + 1, True
        return self._api_message(message)

    async def _patch_message(self, request: web.Request, body: Any) -> Any:
        body = body or {}
        message = self._message_or_fail(request.match_info["message_id"])
        if message.msg_type != "interactive":
            raise ApiError(400, 230054, "This operation is not supported for this message type.")
        if not message.from_bot:
            raise ApiError(400, 230071, "The operator is not the sender of the message.")
        self._content("interactive", body.get("content"))
        self._take(("patch", message.message_id), self.limits.patch_per_second)
        message.content, message.card, message.updated = body["content"], None, True
        return None

    async def _get_message(self, request: web.Request, body: Any) -> Any:
        """One message by id, as its API page says: the bot must be in the message's group, and
        a group's messages need ``im:message.group_msg`` besides ``im:message:readonly``."""
        message = self._message_or_fail(request.match_info["message_id"])
        chat = self.chats[message.chat_id]
        if chat.chat_type == "group" and not chat.bot_member:
            raise ApiError(400, 230002, "The bot can not be outside the group.")
        if chat.chat_type == "group" and not self.group_messages_readable:
            raise ApiError(400, 230027, "Lack of necessary permissions.")
        if message.recalled:
            raise ApiError(400, 230011, "The message is recalled.")
        return {"items": [self._api_message(message)]}

    async def _resource(self, request: web.Request, body: Any) -> web.Response:
        message = self._message_or_fail(request.match_info["message_id"])
        kind = request.query.get("type")
        if kind not in ("image", "file"):
            raise ApiError(400, 234001, "Invalid request param: type.")
        resource = message.resources.get(request.match_info["file_key"])
        if resource is None:
            raise ApiError(400, 234003, "File not in msg.")
        if resource.kind != kind:
            raise ApiError(400, 234001, "Invalid request param: type does not match the resource.")
        return web.Response(
            body=resource.data,
            content_type=resource.content_type,
            headers={"Content-Disposition": f'attachment; filename="{resource.file_name}"'},
        )

    async def _chat(self, request: web.Request, body: Any) -> Any:
        chat = self.chats.get(request.match_info["chat_id"])
        if chat is None or not chat.bot_member:
            raise ApiError(400, 232011, "Operator and chat can NOT be in different tenants / bot not in chat.")
        return {
            "name": chat.name,
            "chat_mode": chat.mode,
            "chat_type": "private",
            "chat_status": "normal",
            "group_message_type": "thread" if chat.mode == "topic" else "chat",
            "external": False,
            "tenant_key": self.tenant_key,
            "user_count": "2",
            "bot_count": "1",
        }

    # --- cards for one person (ephemeral v1; refusal codes assumed, see the module docstring) ---
    async def _send_ephemeral(self, request: web.Request, body: Any) -> Any:
        body = body if isinstance(body, dict) else {}
        chat = self.chats.get(str(body.get("chat_id") or ""))
        if chat is None:
            raise ApiError(400, 230001, "Your request contains an invalid request parameter: chat not found.")
        if not chat.bot_member:
            raise ApiError(400, 230002, "The bot can not be outside the group.")
        if chat.mode != "group":
            raise ApiError(400, 230001, "Your request contains an invalid request parameter: chat_mode is not group.")
        open_id = str(body.get("open_id") or "")
        if open_id not in chat.members:
            raise ApiError(400, 230001, "Your request contains an invalid request parameter: user not in the chat.")
        if body.get("msg_type") != "interactive":
            raise ApiError(400, 230054, "This operation is not supported for this message type.")
        card = body.get("card")
        if not isinstance(card, dict):
            raise ApiError(400, 230001, "Your request contains an invalid request parameter: card.")
        content = json.dumps(card, ensure_ascii=False)
        self._content("interactive", content)  # the size limit of any card
        self._take(("ephemeral", chat.chat_id), self.limits.ephemeral_per_second)
        message = FakeMessage(
            self.new_key("om"), chat.chat_id, "interactive", content, self.app_id, True, _ms(), visible_to=open_id
        )
        self.messages[message.message_id] = message  # at the group's top level: no thread, no reply
        return {"message_id": message.message_id}

    async def _delete_ephemeral(self, request: web.Request, body: Any) -> Any:
        body = body if isinstance(body, dict) else {}
        message = self.messages.get(str(body.get("message_id") or ""))
        if message is None or message.visible_to is None:
            raise ApiError(400, 230001, "Your request contains an invalid request parameter: message_id.")
        del self.messages[message.message_id]
        return None

    # --- the bot, people ---
    async def _bot_info(self, request: web.Request, body: Any) -> dict:
        """Its payload sits beside ``code``, not under ``data`` (as Feishu answers it)."""
        return {
            "code": 0,
            "msg": "ok",
            "bot": {
                "activate_status": 2,
                "app_name": self.bot.name,
                "avatar_url": "",
                "ip_white_list": [],
                "open_id": self.bot.open_id,
            },
        }

    async def _contact_user(self, request: web.Request, body: Any) -> Any:
        if request.query.get("user_id_type", "open_id") != "open_id":
            raise ApiError(400, 99992402, "field validation failed: user_id_type")
        if not self.contacts_readable:
            raise ApiError(400, 41050, "no user authority error")
        user = self.users.get(request.match_info["user_id"])
        if user is None:
            raise ApiError(400, 41050, "no user authority error")
        return {
            "user": {
                "open_id": user.open_id,
                "union_id": user.union_id,
                "user_id": user.user_id,
                "name": user.name,
                "en_name": user.name,
            }
        }

    # --- CardKit v1 ---
    async def _create_card(self, request: web.Request, body: Any) -> Any:
        body = body or {}
        if not self.cardkit_granted:
            raise ApiError(
                400, 99991672, "Access denied. One of the following scopes is required: [cardkit:card:write]."
            )
        if body.get("type") != "card_json":
            raise ApiError(400, 10002, "Your request contains an invalid request parameter: type.")
        data = validate_card(body.get("data"))
        card = FakeCard(str(next(self._card_ids)), data, time.monotonic(), self.streaming)
        card.updates.append(_update("create", card))
        card.updates[-1].text = card.text
        self.cards[card.card_id] = card
        return {"card_id": card.card_id}

    def _card_op(self, op: Any) -> Handler:
        async def handle(request: web.Request, body: Any) -> Any:
            body = body or {}
            card = self.cards.get(request.match_info["card_id"])
            if card is None:
                raise CardError(200740)
            self._take(("card", card.card_id), self.limits.card_per_second)
            element_id = request.match_info.get("element_id")
            now = time.monotonic()
            record = _update(op, card, body.get("sequence"), element_id, body.get("content"))
            try:
                if op == "content":
                    card.set_content(element_id or "", body.get("content"), body.get("sequence"), body.get("uuid"), now)
                elif op == "settings":
                    card.set_settings(body.get("settings"), body.get("sequence"), body.get("uuid"), now)
                elif op == "update":
                    card.replace(body.get("card"), body.get("sequence"), body.get("uuid"), now)
                else:
                    card.change_elements(op, body, element_id, now)
            except CardError as exc:
                record.code = exc.code
                raise
            finally:
                record.text = card.text
                card.updates.append(record)
            return None

        return handle


def _ms() -> int:
    return int(time.time() * 1000)


def _update(
    op: Any, card: FakeCard, sequence: Any = None, element_id: str | None = None, content: Any = None
) -> CardUpdate:
    return CardUpdate(
        op,
        time.monotonic(),
        sequence if isinstance(sequence, int) else None,
        element_id,
        content if isinstance(content, str) else None,
    )
