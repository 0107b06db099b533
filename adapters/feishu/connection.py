"""Feishu's long connection (长连接): events pushed over a WebSocket, no public URL needed.

The protocol is the SDK's (``lark_oapi.ws``: the endpoint that hands out a socket URL, the
``pbbp2.Frame`` protobuf frames, ping / pong carrying the client configuration, one ack
frame per event); the client is ours and runs on the bot's own event loop. Why not
``lark.ws.Client``: it binds an event loop at import and ``start()`` blocks on it (so it needs
a thread of its own and a patched module global), it has no way to stop short of its private
``_disconnect``, it acknowledges an event only after a synchronous handler returns, and a
credential error while reconnecting ends its reconnecting silently while ``start()`` keeps
blocking. Here each event is handed to the inbox the moment its frame is read and
acknowledged right after (Feishu pushes an event again when no ack comes within 3 s, to one
of the app's connections: several processes share the work, and the inbox's dedupe holds);
a connection that cannot be made, or drops, is retried with backoff, logged, and reported
by ``state`` for ``/readyz``; nothing here ever raises out of ``run``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import aiohttp
from lark_oapi.ws.const import (
    AUTH_FAILED,
    EXCEED_CONN_LIMIT,
    FORBIDDEN,
    GEN_ENDPOINT_URI,
    HEADER_BIZ_RT,
    HEADER_HANDSHAKE_AUTH_ERRCODE,
    HEADER_HANDSHAKE_MSG,
    HEADER_HANDSHAKE_STATUS,
    HEADER_MESSAGE_ID,
    HEADER_SEQ,
    HEADER_SUM,
    HEADER_TYPE,
    INTERNAL_ERROR,
    OK,
    SERVICE_ID,
    SYSTEM_BUSY,
)
from lark_oapi.ws.enum import FrameType, MessageType
from lark_oapi.ws.pb.pbbp2_pb2 import Frame

log = logging.getLogger(__name__)

# What an event hands back: None (acknowledge now) or the answer to put in the ack (a card
# callback's toast), awaited before acknowledging.
Handler = Callable[[dict], Awaitable[dict | None] | None]

HEARTBEAT = 20.0  # WebSocket pings (real seconds): a half-open socket is noticed within ~30 s
PARTS_TTL = 5.0  # seconds a payload split over frames may take to arrive whole
FIRST_RETRY = 1.0  # seconds before the first reconnect (times PLATFORM_TIME_SCALE), doubling
REFUSED_RETRY = 300.0  # credentials refused: try again this seldom (a secret fixed in the console)
STEADY = 30.0  # seconds a connection must last for the next drop to retry at once


class Refused(Exception):
    """Feishu refused the app itself (wrong secret, connection cap): retrying soon won't help."""


class Unavailable(Exception):
    """Feishu could not be reached or was busy: retry with backoff."""


@dataclass
class ClientConfig:
    """What the endpoint and every pong say, in seconds (the server's word: a test server's
    are already shrunk)."""

    reconnect_interval: float = 120.0
    reconnect_nonce: float = 30.0
    ping_interval: float = 120.0

    def update(self, data: dict) -> None:
        for key, name in (
            ("ReconnectInterval", "reconnect_interval"),
            ("ReconnectNonce", "reconnect_nonce"),
            ("PingInterval", "ping_interval"),
        ):
            value = data.get(key)
            if isinstance(value, int | float) and value > 0:
                setattr(self, name, float(value))


@dataclass(frozen=True, slots=True)
class State:
    connected: bool
    detail: str


class LongConnection:
    """``await run()`` (a task) keeps one connection up until ``close()``."""

    def __init__(
        self,
        *,
        base_url: str,
        app_id: str,
        app_secret: str,
        session: aiohttp.ClientSession,
        handle: Handler,
        scale: float = 1.0,
    ) -> None:
        self.base_url = base_url
        self.app_id = app_id
        self._secret = app_secret
        self.session = session
        self.handle = handle
        self.scale = scale
        self.config = ClientConfig()
        self.state = State(False, "long connection: not started")
        self.connections = 0  # sockets opened so far (1 + reconnects)
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._closing = False
        self._closed = asyncio.Event()
        self._parts: dict[str, tuple[float, list[bytes | None]]] = {}
        self._acks: set[asyncio.Task] = set()
        self._send_lock = asyncio.Lock()

    # --- the loop ---
    async def run(self) -> None:
        failures = 0
        while not self._closing:
            try:
                url = await self._endpoint()
                opened = time.monotonic()
                await self._serve(url)
                # A connection that held a while starts the backoff afresh; one closed at once
                # (Feishu turning it away) counts as a failure, so retries slow down.
                failures = 0 if time.monotonic() - opened > STEADY * self.scale else failures + 1
                if self._closing:
                    break
                self._set(False, "long connection lost: reconnecting")
                log.warning("feishu: the long connection closed; reconnecting")
            except Refused as exc:
                self._set(False, f"long connection refused: {exc}")
                log.error(
                    "feishu: Feishu refused the long connection (%s); trying again in %.0fs",
                    exc,
                    REFUSED_RETRY * self.scale,
                )
                await self._sleep(REFUSED_RETRY * self.scale)
                continue
            except (Unavailable, aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                failures += 1
                self._set(False, f"long connection: reconnecting (attempt {failures}): {_describe(exc)}")
                log.warning("feishu: long connection failed (%s); attempt %d", _describe(exc), failures)
            except asyncio.CancelledError:
                raise
            except Exception:  # whatever broke, the process stays up and tries again
                failures += 1
                self._set(False, f"long connection: reconnecting (attempt {failures})")
                log.exception("feishu: long connection failed unexpectedly")
            if not self._closing:
                await self._sleep(self._backoff(failures))
        self._set(False, "long connection closed")

    def _backoff(self, failures: int) -> float:
        """Doubling from a second up to Feishu's own reconnect interval, with jitter."""
        ceiling = self.config.reconnect_interval
        delay = min(ceiling, FIRST_RETRY * self.scale * 2 ** max(0, failures - 1))
        return delay * random.uniform(0.5, 1.0)

    async def _sleep(self, seconds: float) -> None:
        """Wait before the next try, or until ``close()``."""
        try:
            await asyncio.wait_for(self._closed.wait(), seconds)
        except TimeoutError:
            pass

    def _set(self, connected: bool, detail: str) -> None:
        self.state = State(connected, detail)

    async def close(self) -> None:
        """Close the socket (a close frame: Feishu sends the next events to the app's other
        connections) and end ``run``; events already handed in are the inbox's."""
        self._closing = True
        self._closed.set()
        ws = self._ws
        if ws is not None and not ws.closed:
            await ws.close()
        if self._acks:
            await asyncio.gather(*self._acks, return_exceptions=True)

    # --- connecting ---
    async def _endpoint(self) -> str:
        """The socket URL (a one-off ticket: never logged) and the client configuration."""
        try:
            async with self.session.post(
                self.base_url + GEN_ENDPOINT_URI,
                headers={"locale": "zh"},
                json={"AppID": self.app_id, "AppSecret": self._secret},
                timeout=aiohttp.ClientTimeout(total=15),
            ) as resp:
                if resp.status != 200:
                    raise Unavailable(f"endpoint answered HTTP {resp.status}")
                body = await resp.json(content_type=None)
        except (aiohttp.ContentTypeError, json.JSONDecodeError) as exc:
            raise Unavailable("endpoint answered no JSON") from exc
        code = body.get("code") if isinstance(body, dict) else None
        if code in (SYSTEM_BUSY, INTERNAL_ERROR):
            raise Unavailable(f"endpoint busy ({code})")
        if code != OK:
            raise Refused(f"{body.get('msg') or 'refused'} ({code})" if isinstance(body, dict) else "refused")
        data = body.get("data") or {}
        self.config.update(data.get("ClientConfig") or {})
        url = data.get("URL")
        if not isinstance(url, str) or not url:
            raise Unavailable("endpoint gave no URL")
        return url

    async def _serve(self, url: str) -> None:
        service = int((parse_qs(urlparse(url).query).get(SERVICE_ID) or ["0"])[0] or 0)
        try:
            ws = await self.session.ws_connect(url, heartbeat=HEARTBEAT, max_msg_size=0, autoping=True)
        except aiohttp.WSServerHandshakeError as exc:
            raise _handshake_failure(exc) from exc
        self._ws = ws
        self.connections += 1
        self._set(True, "long connection")
        log.info("feishu: long connection open")
        pinger = asyncio.create_task(self._ping(ws, service), name="feishu-ping")
        try:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.BINARY:
                    await self._on_frame(ws, message.data)
                elif message.type == aiohttp.WSMsgType.ERROR:
                    raise Unavailable(f"socket error: {ws.exception()}")
        finally:
            pinger.cancel()
            await asyncio.gather(pinger, return_exceptions=True)
            self._ws = None
            if not ws.closed:
                await ws.close()

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse, service: int) -> None:
        """Feishu's own ping frame (its pong carries the current client configuration)."""
        while not ws.closed:
            frame = Frame(SeqID=0, LogID=0, service=service, method=FrameType.CONTROL.value)
            frame.headers.add(key=HEADER_TYPE, value=MessageType.PING.value)
            try:
                await self._send(ws, frame)
            except (ConnectionError, aiohttp.ClientError, RuntimeError) as exc:
                log.info("feishu: ping failed: %s", exc)
                return
            await asyncio.sleep(self.config.ping_interval)

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, frame: Any) -> None:
        async with self._send_lock:
            await ws.send_bytes(frame.SerializeToString())

    # --- frames ---
    async def _on_frame(self, ws: aiohttp.ClientWebSocketResponse, data: bytes) -> None:
        frame = Frame()
        try:
            frame.ParseFromString(data)
        except Exception:  # noqa: BLE001 - protobuf's DecodeError: a frame we cannot read is skipped
            log.warning("feishu: an unreadable frame was skipped")
            return
        headers = {h.key: h.value for h in frame.headers}
        kind = headers.get(HEADER_TYPE, "")
        if frame.method == FrameType.CONTROL.value:
            if kind == MessageType.PONG.value and frame.payload:
                try:
                    self.config.update(json.loads(frame.payload))
                except ValueError:
                    pass
            return
        if kind not in (MessageType.EVENT.value, MessageType.CARD.value):
            return
        payload = self._whole(headers, bytes(frame.payload))
        if payload is None:
            return  # more parts to come
        started = time.monotonic()
        try:
            event = json.loads(payload)
            answer = self.handle(event) if isinstance(event, dict) else None
        except Exception:  # a bug of ours: acknowledged (a re-push would fail the same way)
            log.exception("feishu: an event could not be handed in; acknowledged and dropped")
            answer = None
        if answer is None:
            await self._ack(ws, frame, None, started)
            return
        # A callback's answer (a toast) may take a moment: acknowledge from a task so the
        # frames behind it are read meanwhile.
        task = asyncio.create_task(self._ack_when(ws, frame, answer, started), name="feishu-callback-ack")
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    def _whole(self, headers: dict[str, str], payload: bytes) -> bytes | None:
        """A payload split over ``sum`` frames, put back together (None until it is whole)."""
        try:
            total, seq = int(headers.get(HEADER_SUM, "1")), int(headers.get(HEADER_SEQ, "0"))
        except ValueError:
            return payload
        if total <= 1:
            return payload
        now = time.monotonic()
        for key in [k for k, (at, _) in self._parts.items() if now - at > PARTS_TTL]:
            del self._parts[key]
        message_id = headers.get(HEADER_MESSAGE_ID, "")
        at, parts = self._parts.setdefault(message_id, (now, [None] * total))
        if 0 <= seq < len(parts):
            parts[seq] = payload
        if any(p is None for p in parts):
            return None
        del self._parts[message_id]
        return b"".join(p for p in parts if p is not None)

    async def _ack_when(
        self, ws: aiohttp.ClientWebSocketResponse, frame: Any, answer: Awaitable[dict | None], started: float
    ) -> None:
        try:
            data = await answer
        except Exception:  # no toast then; the click itself is the inbox's
            log.warning("feishu: a callback's answer failed", exc_info=True)
            data = None
        await self._ack(ws, frame, data, started)

    async def _ack(self, ws: aiohttp.ClientWebSocketResponse, frame: Any, data: dict | None, started: float) -> None:
        frame.headers.add(key=HEADER_BIZ_RT, value=str(int((time.monotonic() - started) * 1000)))
        response: dict[str, Any] = {"code": 200}
        if data is not None:
            response["data"] = base64.b64encode(json.dumps(data, ensure_ascii=False).encode()).decode()
        frame.payload = json.dumps(response).encode()
        if ws.closed:
            return  # Feishu pushes it again, to a live connection
        try:
            await self._send(ws, frame)
        except (ConnectionError, aiohttp.ClientError, RuntimeError) as exc:
            log.info("feishu: an ack could not be sent (%s); Feishu will push the event again", exc)


def _handshake_failure(exc: aiohttp.WSServerHandshakeError) -> Exception:
    headers: Mapping[str, str] = exc.headers or {}
    status = headers.get(HEADER_HANDSHAKE_STATUS)
    message = headers.get(HEADER_HANDSHAKE_MSG) or f"HTTP {exc.status}"
    try:
        code = int(status) if status is not None else None
        auth = int(headers.get(HEADER_HANDSHAKE_AUTH_ERRCODE) or 0)
    except ValueError:
        return Unavailable(message)
    if code == FORBIDDEN or (code == AUTH_FAILED and auth == EXCEED_CONN_LIMIT):
        return Refused(f"{message} ({auth or code})")
    return Unavailable(message)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.split("?")[0][:200]  # a URL's query (its ticket) never reaches the log
