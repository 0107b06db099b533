"""The long connection ("长连接") side of the fake Feishu: the endpoint the SDK asks for a
WebSocket URL, and the WebSocket that pushes events in the SDK's own protobuf frames.

Frame schema (package ``pbbp2``, proto2), declared here from the field list of the SDK's
``lark_oapi/ws/pb/pbbp2.proto`` and built with the ``protobuf`` runtime, so the fake encodes
frames independently of the SDK's generated code::

    Header { required string key = 1; required string value = 2; }
    Frame  { required uint64 SeqID = 1; required uint64 LogID = 2; required int32 service = 3;
             required int32 method = 4;  // 0 control (ping / pong), 1 data (event / card)
             repeated Header headers = 5; optional string payload_encoding = 6;
             optional string payload_type = 7; optional bytes payload = 8; optional string LogIDNew = 9; }

Data frames carry headers ``type`` (event | card), ``message_id``, ``sum`` / ``seq`` (a payload
split over several frames), ``trace_id``; the client answers with the same frame, a ``biz_rt``
header added and the payload replaced by ``{"code": 200 | 500, "data": base64(json)?}``.
The client pings (a control frame, ``type: ping``) every ``PingInterval`` seconds; the server
answers ``type: pong`` with the client configuration as JSON in the payload.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import WSMsgType, web
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

ENDPOINT_PATH = "/callback/ws/endpoint"
SOCKET_PATH = "/ws/v2"
CONTROL, DATA = 0, 1
MAX_CONNECTIONS = 50  # per app


def _frame_class() -> type:
    proto = descriptor_pb2.FileDescriptorProto(name="fake_feishu_pbbp2.proto", package="pbbp2", syntax="proto2")
    kind = descriptor_pb2.FieldDescriptorProto
    header = proto.message_type.add(name="Header")
    header.field.add(name="key", number=1, type=kind.TYPE_STRING, label=kind.LABEL_REQUIRED)
    header.field.add(name="value", number=2, type=kind.TYPE_STRING, label=kind.LABEL_REQUIRED)
    frame = proto.message_type.add(name="Frame")
    for name, number, type_, label in (
        ("SeqID", 1, kind.TYPE_UINT64, kind.LABEL_REQUIRED),
        ("LogID", 2, kind.TYPE_UINT64, kind.LABEL_REQUIRED),
        ("service", 3, kind.TYPE_INT32, kind.LABEL_REQUIRED),
        ("method", 4, kind.TYPE_INT32, kind.LABEL_REQUIRED),
        ("headers", 5, kind.TYPE_MESSAGE, kind.LABEL_REPEATED),
        ("payload_encoding", 6, kind.TYPE_STRING, kind.LABEL_OPTIONAL),
        ("payload_type", 7, kind.TYPE_STRING, kind.LABEL_OPTIONAL),
        ("payload", 8, kind.TYPE_BYTES, kind.LABEL_OPTIONAL),
        ("LogIDNew", 9, kind.TYPE_STRING, kind.LABEL_OPTIONAL),
    ):
        added = frame.field.add(name=name, number=number, type=type_, label=label)
        if name == "headers":
            added.type_name = ".pbbp2.Header"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("pbbp2.Frame"))


Frame = _frame_class()


def encode_frame(
    *, method: int, service: int, headers: dict[str, str], payload: bytes = b"", seq_id: int = 0, log_id: int = 0
) -> bytes:
    frame = Frame(SeqID=seq_id, LogID=log_id, service=service, method=method, payload=payload)
    for key, value in headers.items():
        frame.headers.add(key=key, value=value)
    return frame.SerializeToString()


def decode_frame(data: bytes) -> tuple[Any, dict[str, str]]:
    frame = Frame()
    frame.ParseFromString(data)
    return frame, {h.key: h.value for h in frame.headers}


@dataclass
class WsConnection:
    conn_id: str  # the device_id the endpoint handed out
    service_id: int
    opened_at: float
    ws: web.WebSocketResponse
    request: web.Request
    closed_at: float | None = None
    pings: int = 0

    @property
    def live(self) -> bool:
        return self.closed_at is None and not self.ws.closed


@dataclass
class PushAttempt:
    conn_id: str
    sent_at: float
    acked_at: float | None = None
    code: int | None = None  # in the ack: 200 handled, 500 the handler raised

    @property
    def latency(self) -> float | None:
        return None if self.acked_at is None else self.acked_at - self.sent_at


@dataclass
class WsDelivery:
    """One event pushed over the long connection, with every (re-)push and its ack."""

    message_id: str
    event: dict
    attempts: list[PushAttempt] = field(default_factory=list)
    response: Any = None  # what a callback handler returned (the ack's base64 JSON data)

    @property
    def acked(self) -> bool:
        return any(a.code == 200 for a in self.attempts)

    @property
    def ack_latency(self) -> float | None:
        return next((a.latency for a in self.attempts if a.code == 200), None)


class LongConnection:
    """The endpoint plus WebSocket server; ``FakeFeishu`` mounts it on its aiohttp app."""

    def __init__(
        self,
        *,
        app_id: str,
        app_secret: str,
        time_scale: float,
        ack_timeout: float = 3.0,
        max_pushes: int = 4,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.app_id, self.app_secret, self.time_scale = app_id, app_secret, time_scale
        self.ack_timeout = ack_timeout * time_scale  # Feishu pushes again after 3 s without an ack
        self.max_pushes = max_pushes
        self.max_connections = max_connections
        self.base_ws_url = ""
        self.connections: list[WsConnection] = []
        self.deliveries: list[WsDelivery] = []
        self.endpoint_calls = 0
        self.refused_handshakes = 0
        self._tickets: set[str] = set()
        self._refuse_until = 0.0
        self._pending: dict[str, asyncio.Future] = {}
        self._round_robin = itertools.count()
        self._frame_ids = itertools.count(1)
        self._changed = asyncio.Event()

    def mount(self, app: web.Application) -> None:
        app.router.add_post(ENDPOINT_PATH, self._endpoint)
        app.router.add_get(SOCKET_PATH, self._socket)

    def client_config(self) -> dict[str, float | int]:
        """What the endpoint and every pong hand the client: Feishu's values, scaled."""

        def scaled(seconds: int) -> float | int:
            return seconds if self.time_scale == 1 else seconds * self.time_scale

        return {
            "ReconnectCount": -1,
            "ReconnectInterval": scaled(120),
            "ReconnectNonce": scaled(30),
            "PingInterval": scaled(120),
        }

    # --- what tests use ---
    @property
    def live(self) -> list[WsConnection]:
        return [c for c in self.connections if c.live]

    async def wait_connected(self, count: int = 1, within: float = 10.0) -> list[WsConnection]:
        deadline = time.monotonic() + within
        while len(self.live) < count:
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{len(self.live)} long connection(s), wanted {count}")
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue
        return self.live

    def refuse_connections(self, seconds: float) -> None:
        """For ``seconds`` (wall clock) the endpoint answers "system busy" and the socket 503."""
        self._refuse_until = time.monotonic() + seconds

    async def drop_connections(self, *, abrupt: bool = True) -> int:
        """Cut every live connection (abrupt: the TCP connection vanishes, as on a network loss;
        else a close frame 1001). Returns how many were cut."""
        cut = self.live
        for conn in cut:
            conn.closed_at = time.monotonic()
            if abrupt and conn.request.transport is not None:
                conn.request.transport.abort()
            else:
                await conn.ws.close(code=1001, message=b"server going away")
        self._changed.set()
        return len(cut)

    async def push(
        self,
        event: dict,
        *,
        parts: int = 1,
        frame_type: Literal["event", "card"] = "event",
        wait_connection: float = 10.0,
    ) -> WsDelivery:
        """Give ``event`` to one connection (round-robin), wait for its ack; without an ack in
        3 s (scaled) or with a failed one, push it again, up to ``max_pushes`` times.
        Card callbacks (``card.action.trigger``) travel as ``type: event`` frames too; a
        ``type: card`` frame is what lark-oapi 1.7.5 drops unanswered."""
        payload = json.dumps(event, ensure_ascii=False).encode()
        delivery = WsDelivery(message_id=secrets.token_hex(16), event=event)
        self.deliveries.append(delivery)
        loop = asyncio.get_running_loop()
        for _ in range(self.max_pushes):
            live = await self.wait_connected(1, wait_connection)
            conn = live[next(self._round_robin) % len(live)]
            future: asyncio.Future = loop.create_future()
            self._pending[delivery.message_id] = future
            attempt = PushAttempt(conn.conn_id, time.monotonic())
            delivery.attempts.append(attempt)
            try:
                await self._send_data(conn, delivery.message_id, payload, parts, frame_type)
                code, data, at = await asyncio.wait_for(future, self.ack_timeout)
            except (TimeoutError, ConnectionError):
                continue
            finally:
                self._pending.pop(delivery.message_id, None)
            attempt.acked_at, attempt.code = at, code
            if code == 200:
                delivery.response = data
                break
        return delivery

    async def _send_data(
        self, conn: WsConnection, message_id: str, payload: bytes, parts: int, frame_type: str
    ) -> None:
        size = -(-len(payload) // parts)
        chunks = [payload[i * size : (i + 1) * size] for i in range(parts)]
        trace_id = secrets.token_hex(8)
        for seq, chunk in enumerate(chunks):
            frame = encode_frame(
                method=DATA,
                service=conn.service_id,
                seq_id=next(self._frame_ids),
                log_id=secrets.randbits(63),
                payload=chunk,
                headers={
                    "type": frame_type,
                    "message_id": message_id,
                    "sum": str(parts),
                    "seq": str(seq),
                    "trace_id": trace_id,
                },
            )
            await conn.ws.send_bytes(frame)

    # --- server side ---
    def _refusing(self) -> bool:
        return time.monotonic() < self._refuse_until

    async def _endpoint(self, request: web.Request) -> web.Response:
        self.endpoint_calls += 1
        try:
            body = await request.json()
        except ValueError:
            body = {}
        if body.get("AppID") != self.app_id or body.get("AppSecret") != self.app_secret:
            return web.json_response({"code": 10014, "msg": "app secret invalid"})
        if self._refusing():
            return web.json_response({"code": 1, "msg": "system busy"})
        ticket = secrets.token_hex(12)
        self._tickets.add(ticket)
        url = (
            f"{self.base_ws_url}{SOCKET_PATH}?fpid=493&aid=552564&device_id={secrets.token_hex(8)}"
            f"&access_key={secrets.token_hex(8)}&service_id={secrets.randbelow(2**24) + 1}&ticket={ticket}"
        )
        return web.json_response({"code": 0, "msg": "ok", "data": {"URL": url, "ClientConfig": self.client_config()}})

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        if self._refusing() or request.query.get("ticket") not in self._tickets:
            self.refused_handshakes += 1
            return web.Response(status=503, text="service unavailable")
        if len(self.live) >= self.max_connections:
            self.refused_handshakes += 1
            return web.Response(
                status=403,
                headers={
                    "handshake-status": "514",
                    "handshake-msg": "exceed connection limit",
                    "handshake-autherrcode": "1000040350",
                },
            )
        self._tickets.discard(request.query["ticket"])
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        conn = WsConnection(
            request.query.get("device_id", ""), int(request.query.get("service_id", "0")), time.monotonic(), ws, request
        )
        self.connections.append(conn)
        self._changed.set()
        try:
            async for message in ws:
                if message.type == WSMsgType.BINARY:
                    await self._on_frame(conn, message.data)
        finally:
            conn.closed_at = conn.closed_at or time.monotonic()
            self._changed.set()
        return ws

    async def _on_frame(self, conn: WsConnection, data: bytes) -> None:
        frame, headers = decode_frame(data)
        if frame.method == CONTROL:
            if headers.get("type") == "ping":
                conn.pings += 1
                await conn.ws.send_bytes(
                    encode_frame(
                        method=CONTROL,
                        service=frame.service,
                        seq_id=frame.SeqID,
                        log_id=frame.LogID,
                        headers={"type": "pong"},
                        payload=json.dumps(self.client_config()).encode(),
                    )
                )
            return
        future = self._pending.get(headers.get("message_id", ""))
        if future is None or future.done():
            return
        try:
            answer = json.loads(frame.payload or b"{}")
        except ValueError:
            answer = {}
        data_field = answer.get("data")
        decoded = json.loads(base64.b64decode(data_field)) if data_field else None
        future.set_result((answer.get("code"), decoded, time.monotonic()))
