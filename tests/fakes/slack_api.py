"""A protocol-faithful fake of the Slack Web API and Socket Mode, for tests.

An ``aiohttp.web`` server on 127.0.0.1 that the real slack-sdk (``AsyncWebClient(base_url=
fake.api_url)``) and slack-bolt talk to. It keeps messages per channel and thread, runs
the streaming state machine (startStream → appendStream → stopStream, expiry after
``stream_ttl`` with ``message_not_in_streaming_state``, ``msg_too_long`` past 12,000
characters), enforces per-method tier limits per workspace and the per-channel posting
limit with 429 + ``Retry-After``, serves files (and Slack's HTML login page for a wrong
token), takes uploads the way Slack does since files.upload was retired
(files.getUploadURLExternal → the bytes POSTed to the URL it gave → files.completeUploadExternal
sharing the file in a channel or thread), and offers a Socket Mode WebSocket endpoint that
pushes event envelopes and collects acks. Every call is recorded with a timestamp.

Limits are sliding windows (at most N calls in any ``window`` seconds) by default — a whole
minute's calls may go at once. ``limits=LimitMode.BUCKETS`` makes them token buckets that refill
at the documented rate but hold only a sixth of a minute's calls (Tier 2: 20 a minute, 3 at
once), per method and workspace: a Slack that tolerates smaller bursts than a minute's
allowance, which Slack's "occasional bursts" leaves possible. The per-channel post limit is the
same in both modes. Tests shrink ``window`` (and ``post_interval``) to keep the suite fast.

A stream's lifetime is Slack's ~5 minutes shrunk with the windows (``window`` / 60, the
harness's PLATFORM_TIME_SCALE) unless a test sets ``stream_ttl``. ``chat.postEphemeral``
shows a message to one member of the channel (``user_not_in_channel`` for anyone else),
kept apart from the channel's history in ``ephemerals``. Suggested prompts and titles exist
only in the app's DM (its assistant / agent view): elsewhere Slack answers the documented
``channel_not_found`` / ``invalid_thread_ts`` ("Thread not found").
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import math
import time
import urllib.parse
from collections import defaultdict, deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from aiohttp import WSMsgType, web

TEAM_ID = "T0FAKE001"
BOT_USER_ID = "U0BOT0001"
BOT_ID = "B0BOT0001"
APP_ID = "A0APP0001"
BOT_TOKEN = "xoxb-fake-bot-token"
APP_TOKEN = "xapp-fake-app-token"
SIGNING_SECRET = "fake-signing-secret"

STREAM_MAX_CHARS = 12_000
TEXT_MAX_CHARS = 4_000  # plain ``text`` reportedly fails around here with msg_too_long
MARKDOWN_BLOCKS_MAX = 12_000

# Calls per minute per workspace (Slack's tiers); None = not limited here.
REAL_TIER_LIMITS: dict[str, int] = {
    "chat.startStream": 20,  # Tier 2
    "chat.stopStream": 20,  # Tier 2
    "chat.update": 50,  # Tier 3
    "conversations.replies": 50,  # Tier 3
    "chat.appendStream": 100,  # Tier 4
    "chat.postEphemeral": 100,  # Tier 4
    "files.info": 100,  # Tier 4
    "files.getUploadURLExternal": 100,  # Tier 4
    "files.completeUploadExternal": 100,  # Tier 4
    "assistant.threads.setSuggestedPrompts": 100,
    "assistant.threads.setTitle": 100,
    "assistant.threads.setStatus": 600,  # "special"; generous
    "users.info": 100,  # Tier 4
    "apps.connections.open": 20,
}

LOGIN_PAGE = b"""<!DOCTYPE html><html><head><title>Slack</title></head>
<body><form action="/signin"><h1>Sign in to Fake Team</h1></form></body></html>"""


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# Block Kit limits the fake enforces (Slack answers invalid_blocks past them).
MAX_BLOCKS = 50
MAX_ACTION_ELEMENTS = 25
OPTION_COUNTS = {"static_select": (1, 100), "overflow": (1, 5)}
PLAIN_TEXT_MAX = {"button": 75, "option": 75, "placeholder": 150}
OPTION_VALUE_MAX = 150


def invalid_blocks(blocks: list[dict]) -> str | None:
    """Why Slack would refuse these blocks, or None."""
    if len(blocks) > MAX_BLOCKS:
        return f"more than {MAX_BLOCKS} blocks"
    block_ids = [b["block_id"] for b in blocks if b.get("block_id")]
    if len(block_ids) != len(set(block_ids)):
        return "duplicate block_id"
    for block in blocks:
        if block.get("type") != "actions":
            continue
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= MAX_ACTION_ELEMENTS:
            return "actions block needs 1-25 elements"
        action_ids = [e.get("action_id") for e in elements]
        if len(action_ids) != len(set(action_ids)):
            return "duplicate action_id in a block"
        for element in elements:
            kind = element.get("type")
            if kind == "button":
                if len(element.get("text", {}).get("text", "")) > PLAIN_TEXT_MAX["button"]:
                    return "button text too long"
            elif kind in OPTION_COUNTS:
                low, high = OPTION_COUNTS[kind]
                options = element.get("options") or []
                if not low <= len(options) <= high:
                    return f"{kind} needs {low}-{high} options"
                for option in options:
                    if len(option.get("text", {}).get("text", "")) > PLAIN_TEXT_MAX["option"]:
                        return "option text too long"
                    if not option.get("value") or len(option["value"]) > OPTION_VALUE_MAX:
                        return "option value missing or too long"
                placeholder = element.get("placeholder", {}).get("text", "")
                if len(placeholder) > PLAIN_TEXT_MAX["placeholder"]:
                    return "placeholder too long"
            else:
                return f"unsupported element {kind!r}"
    return None


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    at: float
    ok: bool = True
    error: str = ""
    status: int = 200


@dataclass
class FakeMessage:
    channel: str
    ts: str
    user: str
    text: str = ""  # what the message shows (markdown_text, text, or markdown blocks' text)
    blocks: list[dict] = field(default_factory=list)
    thread_ts: str | None = None
    bot: bool = False
    streaming: bool = False
    stream_started: float = 0.0
    stream_expired: bool = False
    recipient_user_id: str | None = None
    files: list[dict] = field(default_factory=list)
    edits: int = 0
    # Native streams: every non-text chunk (task_update, plan_update, blocks) in the order it
    # came, and the display mode startStream asked for.
    chunks: list[dict] = field(default_factory=list)
    task_display_mode: str | None = None

    @property
    def plan_title(self) -> str | None:
        """The plan's title as shown: the latest plan_update chunk's."""
        titles = [c["title"] for c in self.chunks if c.get("type") == "plan_update"]
        return titles[-1] if titles else None

    def tasks(self) -> dict[str, dict]:
        """Each task's latest state, as the timeline shows it (task_update chunks by id)."""
        latest: dict[str, dict] = {}
        for chunk in self.chunks:
            if chunk.get("type") == "task_update":
                latest[chunk["id"]] = {**latest.get(chunk["id"], {}), **chunk}
        return latest

    @property
    def button_ids(self) -> list[str]:
        ids = []
        for block in self.blocks:
            for element in block.get("elements", []) if block.get("type") == "actions" else []:
                ids.append(element.get("action_id", ""))
        return ids

    def element(self, action_id: str) -> dict:
        for block in self.blocks:
            for element in block.get("elements", []) if block.get("type") == "actions" else []:
                if element.get("action_id") == action_id:
                    return element
        raise KeyError(action_id)

    def button(self, prefix: str) -> dict:
        for block in self.blocks:
            if block.get("type") == "actions":
                for element in block.get("elements", []):
                    if element.get("action_id", "").startswith(prefix):
                        return element
        raise KeyError(prefix)


@dataclass
class FakeEphemeral:
    """A message only ``user`` sees (chat.postEphemeral): not part of the channel's history,
    never editable, gone when the client reloads."""

    channel: str
    user: str
    ts: str
    text: str
    blocks: list[dict] = field(default_factory=list)
    thread_ts: str | None = None


@dataclass
class FakeFile:
    id: str
    name: str
    mimetype: str
    data: bytes
    size: int
    connect_stub: bool = False  # events carry only {"id", "file_access": "check_file_info"}


class LimitMode(Enum):
    WINDOWS = "windows"  # at most a minute's calls in any minute, all at once if the client likes
    BUCKETS = "buckets"  # refill at the minute's rate, at most BURST_SHARE-th of it at once


BURST_SHARE = 6


class TokenBuckets:
    """Token buckets per key: ``limit`` tokens a ``window`` seconds, at most ``limit //
    BURST_SHARE`` (at least 1) held; full at first."""

    def __init__(self) -> None:
        self._tokens: dict[Any, tuple[float, float]] = {}  # key -> (tokens, when counted)

    def check(self, key: Any, limit: int, window: float, now: float) -> float:
        """0 if the call may go now (and spends a token), else the seconds until it may."""
        size = max(1, limit // BURST_SHARE)
        rate = limit / window
        tokens, then = self._tokens.get(key, (float(size), now))
        tokens = min(float(size), tokens + (now - then) * rate)
        if tokens < 1.0:
            self._tokens[key] = (tokens, now)
            return (1.0 - tokens) / rate
        self._tokens[key] = (tokens - 1.0, now)
        return 0.0


class SlackRateLimiter:
    """Sliding-window limits: at most ``limit`` calls in any ``window`` seconds per key."""

    def __init__(self) -> None:
        self._calls: dict[Any, deque[float]] = defaultdict(deque)

    def check(self, key: Any, limit: int, window: float, now: float) -> float:
        """0 if the call may go now (and counts it), else the seconds until it may."""
        calls = self._calls[key]
        while calls and calls[0] <= now - window:
            calls.popleft()
        if len(calls) >= limit:
            return calls[0] + window - now
        calls.append(now)
        return 0.0


class FakeSlack:
    def __init__(
        self,
        *,
        window: float = 60.0,
        post_interval: float = 1.0,
        post_burst: int = 3,
        tier_limits: dict[str, int] | None = None,
        stream_ttl: float | None = None,
        streaming_error: str | None = None,
        status_clears_on_reply: bool = True,
        signing_secret: str = SIGNING_SECRET,
        limits: LimitMode = LimitMode.WINDOWS,
    ) -> None:
        self.window = window
        self.limits = limits  # may be switched before the first call
        self.post_interval = post_interval
        self.post_burst = post_burst
        self.tier_limits = dict(REAL_TIER_LIMITS if tier_limits is None else tier_limits)
        # Slack's ~300 s stream lifetime, scaled like the rate windows (PLATFORM_TIME_SCALE =
        # window / 60 in the harness) unless a test gives its own.
        self.stream_ttl = 300.0 * window / 60.0 if stream_ttl is None else stream_ttl
        self.streaming_error = streaming_error  # e.g. "feature_not_enabled": refuse startStream
        self.status_clears_on_reply = status_clears_on_reply
        self.signing_secret = signing_secret
        # The token file downloads accept (another value = the bot lacks files:read).
        self.download_token = BOT_TOKEN
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], FakeMessage] = {}
        self.files: dict[str, FakeFile] = {}
        self.uploads: dict[str, dict[str, Any]] = {}  # file id -> {"filename", "length", "data"} until completed
        self.status: dict[tuple[str, str], str] = {}
        self.status_history: list[tuple[str, str, str]] = []
        self.titles: dict[tuple[str, str], str] = {}
        self.suggested_prompts: dict[tuple[str, str], list[dict]] = {}
        self.users = {"U0ALICE01": "alice", "U0BOB0001": "bob", "U0CAROL01": "carol"}
        self.channels_without_bot: set[str] = set()  # chat.postMessage there: not_in_channel
        # Members per channel for chat.postEphemeral; a channel not listed has every known user.
        self.members: dict[str, set[str]] = {}
        self.ephemerals: list[FakeEphemeral] = []
        self.download_delay = 0.0  # seconds a file download takes (a slow upload to fetch)
        self.missing_scopes: set[str] = set()  # methods the app's token lacks the scope for
        # Legacy assistant-view threads (assistant_thread_started): where a thread_ts may be given
        # to setSuggestedPrompts / setTitle.
        self.assistant_threads: set[tuple[str, str]] = set()
        self.responses: list[dict] = []  # what was posted to response_urls
        self.socket_acks: dict[str, asyncio.Future] = {}
        self.socket_connections = 0
        self._limiter = SlackRateLimiter()
        self._buckets = TokenBuckets()
        self._ts_counter = itertools.count(1)
        self._event_counter = itertools.count(1)
        self._ws: web.WebSocketResponse | None = None
        self._ws_ready = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- server lifecycle ---
    async def start(self) -> FakeSlack:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/files-pri/{file_id}/{name}", self._download)
        app.router.add_post("/upload/v1/{file_id}", self._upload)
        app.router.add_get("/link/", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    # --- helpers for tests ---
    def new_ts(self) -> str:
        return f"{1_700_000_000 + next(self._ts_counter)}.{next(self._ts_counter):06d}"

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    @property
    def rate_limited(self) -> list[Call]:
        return [c for c in self.calls if c.status == 429]

    def thread(self, channel: str, thread_ts: str) -> list[FakeMessage]:
        msgs = [
            m
            for m in self.messages.values()
            if m.channel == channel and (m.ts == thread_ts or m.thread_ts == thread_ts)
        ]
        return sorted(msgs, key=lambda m: float(m.ts))

    def bot_replies(self, channel: str, thread_ts: str) -> list[FakeMessage]:
        return [m for m in self.thread(channel, thread_ts) if m.bot and m.ts != thread_ts]

    def add_file(
        self, name: str, mimetype: str, data: bytes, *, size: int | None = None, connect_stub: bool = False
    ) -> FakeFile:
        fid = f"F{len(self.files) + 1:08d}"
        self.files[fid] = FakeFile(fid, name, mimetype, data, len(data) if size is None else size, connect_stub)
        return self.files[fid]

    def _file_object(self, f: FakeFile) -> dict:
        url = f"http://127.0.0.1:{self.port}/files-pri/{TEAM_ID}-{f.id}/{urllib.parse.quote(f.name)}"
        return {
            "id": f.id,
            "name": f.name,
            "title": f.name,
            "mimetype": f.mimetype,
            "filetype": f.name.rsplit(".", 1)[-1],
            "size": f.size,
            "url_private": url,
            "url_private_download": url + "?download=1",
            "mode": "hosted",
            "is_external": False,
        }

    def user_message(
        self,
        channel: str,
        text: str,
        *,
        user: str = "U0ALICE01",
        thread_ts: str | None = None,
        files: list[FakeFile] | None = None,
        channel_type: str | None = None,
        mention: bool = False,
        event_id: str | None = None,
        subtype: str | None = None,
    ) -> tuple[str, dict]:
        """Store a human's message and return (ts, its Events API envelope)."""
        ts = self.new_ts()
        self.messages[(channel, ts)] = FakeMessage(
            channel, ts, user, text, thread_ts=thread_ts, files=[{"id": f.id} for f in files or []]
        )
        if channel_type is None:
            channel_type = "im" if channel.startswith("D") else "channel"
        event: dict[str, Any] = {
            "type": "app_mention" if mention else "message",
            "user": user,
            "text": text,
            "ts": ts,
            "channel": channel,
            "event_ts": ts,
            "team": TEAM_ID,
            "blocks": [{"type": "rich_text", "elements": []}],
        }
        if not mention:
            event["channel_type"] = channel_type
        if thread_ts:
            event["thread_ts"] = thread_ts
        if files:
            event["subtype"] = "file_share"
            event["files"] = [
                {"id": f.id, "file_access": "check_file_info"} if f.connect_stub else self._file_object(f)
                for f in files
            ]
        if subtype:
            event["subtype"] = subtype
        return ts, self.envelope(event, event_id=event_id)

    def remove_bot(self, channel: str) -> dict:
        """Someone removes the app from a channel: Slack sends ``channel_left`` and refuses
        the bot's writes there from now on."""
        self.channels_without_bot.add(channel)
        return self.envelope(
            {"type": "channel_left", "channel": channel, "actor_id": "U0ALICE01", "event_ts": self.new_ts()}
        )

    def assistant_thread_started(
        self, channel: str, *, user: str = "U0ALICE01", context_channel: str | None = None
    ) -> tuple[str, dict]:
        """The user opens a new thread in the app's assistant view: (thread_ts, its envelope)."""
        ts = self.new_ts()
        self.assistant_threads.add((channel, ts))
        thread: dict[str, Any] = {"user_id": user, "channel_id": channel, "thread_ts": ts, "context": {}}
        if context_channel:
            thread["context"] = {"channel_id": context_channel, "team_id": TEAM_ID}
        return ts, self.envelope({"type": "assistant_thread_started", "event_ts": ts, "assistant_thread": thread})

    def ephemerals_for(self, user: str, channel: str | None = None) -> list[FakeEphemeral]:
        return [e for e in self.ephemerals if e.user == user and (channel is None or e.channel == channel)]

    def envelope(self, event: dict, *, event_id: str | None = None) -> dict:
        thread = event.get("assistant_thread") or {}
        if event.get("type") == "assistant_thread_started" and thread.get("channel_id") and thread.get("thread_ts"):
            self.assistant_threads.add((thread["channel_id"], thread["thread_ts"]))
        return {
            "token": "legacy-verification-token",
            "team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(self._event_counter):010d}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": TEAM_ID,
                    "user_id": BOT_USER_ID,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }

    def block_action(
        self, message: FakeMessage, action_id: str, *, user: str = "U0ALICE01", option: str | None = None
    ) -> dict:
        """The interactivity payload Slack sends when a user presses a button on ``message``
        (or picks the option whose value is ``option`` in a select)."""
        block = next(
            (
                b
                for b in message.blocks
                if b.get("type") == "actions" and any(e.get("action_id") == action_id for e in b.get("elements", []))
            ),
            None,
        )
        if block is None:
            raise KeyError(action_id)
        element = next(e for e in block["elements"] if e.get("action_id") == action_id)
        action: dict[str, Any] = {
            "type": element["type"],
            "action_id": action_id,
            "block_id": block.get("block_id", ""),
            "action_ts": str(time.time()),
        }
        if element["type"] == "button":
            action["value"] = element.get("value", "")
        else:
            chosen = next((o for o in element.get("options", []) if o.get("value") == option), None)
            if chosen is None:
                raise KeyError(f"{action_id} has no option {option!r}")
            action["selected_option"] = chosen
            if "placeholder" in element:
                action["placeholder"] = element["placeholder"]
        return {
            "type": "block_actions",
            "api_app_id": APP_ID,
            "token": "legacy-verification-token",
            "team": {"id": TEAM_ID, "domain": "fake"},
            "user": {"id": user, "team_id": TEAM_ID},
            "container": {
                "type": "message",
                "message_ts": message.ts,
                "channel_id": message.channel,
                "thread_ts": message.thread_ts,
                "is_ephemeral": False,
            },
            "channel": {"id": message.channel},
            "trigger_id": "1.2.3",
            "message": {
                "type": "message",
                "ts": message.ts,
                "thread_ts": message.thread_ts,
                "user": BOT_USER_ID,
                "bot_id": BOT_ID,
                "text": message.text,
                "blocks": message.blocks,
            },
            "response_url": f"http://127.0.0.1:{self.port}/api/response_url",
            "actions": [action],
        }

    def slash_command(self, channel: str, command: str, text: str = "", *, user: str = "U0ALICE01") -> dict:
        """The fields Slack sends for a slash command (form-encoded over HTTP, the payload over
        Socket Mode). Slack offers app commands only outside threads, so there is no thread_ts."""
        return {
            "token": "legacy-verification-token",
            "team_id": TEAM_ID,
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": "directmessage" if channel.startswith("D") else "general",
            "user_id": user,
            "user_name": self.users.get(user, user),
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": f"http://127.0.0.1:{self.port}/api/response_url",
            "trigger_id": f"{next(self._event_counter)}.{TEAM_ID}.trigger",
        }

    def message_shortcut(self, message: FakeMessage, callback_id: str, *, user: str = "U0ALICE01") -> dict:
        return {
            "type": "message_action",
            "callback_id": callback_id,
            "trigger_id": "1.2.3",
            "team": {"id": TEAM_ID, "domain": "fake"},
            "user": {"id": user, "team_id": TEAM_ID},
            "channel": {"id": message.channel},
            "message_ts": message.ts,
            "message": {
                "type": "message",
                "ts": message.ts,
                "thread_ts": message.thread_ts,
                **({"bot_id": BOT_ID} if message.bot else {}),
                "user": message.user,
                "text": message.text,
            },
            "response_url": f"http://127.0.0.1:{self.port}/api/response_url",
            "token": "legacy-verification-token",
        }

    def signed(
        self,
        body: bytes,
        *,
        timestamp: int | None = None,
        secret: str | None = None,
        retry_num: int | None = None,
        content_type: str = "application/json",
    ) -> dict[str, str]:
        """Headers Slack would send with ``body`` (a real v0 signature)."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        base = b"v0:" + ts.encode() + b":" + body
        digest = hmac.new((secret or self.signing_secret).encode(), base, hashlib.sha256).hexdigest()
        headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}", "Content-Type": content_type}
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return headers

    def form_body(self, payload: dict) -> bytes:
        return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()

    # --- Socket Mode ---
    async def wait_socket(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self._ws_ready.wait(), timeout)

    async def push(
        self,
        payload: dict,
        *,
        kind: str = "events_api",
        retry_attempt: int = 0,
        wait_ack: bool = True,
        timeout: float = 10.0,
    ) -> str:
        """Send an envelope over the socket; wait for the app's ack. Returns envelope_id."""
        await self.wait_socket(timeout)
        assert self._ws is not None
        envelope_id = f"env-{next(self._event_counter)}"
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self.socket_acks[envelope_id] = future
        await self._ws.send_str(
            json.dumps(
                {
                    "envelope_id": envelope_id,
                    "type": kind,
                    "payload": payload,
                    "accepts_response_payload": kind != "events_api",
                    "retry_attempt": retry_attempt,
                    "retry_reason": "timeout" if retry_attempt else "",
                }
            )
        )
        if wait_ack:
            await asyncio.wait_for(future, timeout)
        return envelope_id

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self._ws = ws
        self.socket_connections += 1
        await ws.send_str(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "debug_info": {"host": "fake", "approximate_connection_time": 18060},
                    "connection_info": {"app_id": APP_ID},
                }
            )
        )
        self._ws_ready.set()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                data = json.loads(msg.data)
                future = self.socket_acks.get(data.get("envelope_id", ""))
                if future is not None and not future.done():
                    future.set_result(data)
        self._ws_ready.clear()
        return ws

    # --- files ---
    async def _download(self, request: web.Request) -> web.StreamResponse:
        self.calls.append(Call("files.download", dict(request.match_info), time.monotonic()))
        await asyncio.sleep(self.download_delay)
        if request.headers.get("Authorization") != f"Bearer {self.download_token}":
            return web.Response(body=LOGIN_PAGE, content_type="text/html")
        fid = request.match_info["file_id"].split("-", 1)[-1]
        f = self.files.get(fid)
        if f is None:
            return web.Response(status=404, text="not found")
        return web.Response(body=f.data, content_type=f.mimetype)

    async def _upload(self, request: web.Request) -> web.Response:
        """Step 2 of an upload: the file's bytes, as the raw body (what slack-sdk sends) or a
        multipart form's ``file`` field."""
        fid = request.match_info["file_id"]
        self.calls.append(Call("files.upload_url", {"file": fid}, time.monotonic()))
        pending = self.uploads.get(fid)
        if pending is None:
            return web.Response(status=404, text="upload not found")
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            field_ = form.get("file") or form.get("filename")
            data = field_.file.read() if hasattr(field_, "file") else str(field_ or "").encode()
        else:
            data = await request.read()
        pending["data"] = data
        return web.Response(text=f"OK - {len(data)}")

    # --- the Web API ---
    async def _args(self, request: web.Request) -> dict[str, Any]:
        args: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                args.update(await request.json())
            else:
                args.update(dict(await request.post()))
        for key in ("blocks", "chunks", "prompts", "metadata", "attachments", "files"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        return args

    def _token(self, request: web.Request, args: dict) -> str:
        auth = request.headers.get("Authorization", "")
        return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else str(args.get("token", ""))

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await self._args(request)
        now = time.monotonic()
        call = Call(method, args, now)
        self.calls.append(call)
        token = self._token(request, args)
        expected = APP_TOKEN if method == "apps.connections.open" else BOT_TOKEN
        if method != "response_url" and token != expected:
            return self._fail(call, "not_authed" if not token else "invalid_auth")
        wait = self._rate_check(method, args, now)
        if wait > 0:
            call.ok, call.error, call.status = False, "ratelimited", 429
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": str(max(1, math.ceil(wait)))}
            )
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return self._fail(call, "unknown_method")
        if method in self.missing_scopes:
            return self._fail(call, "missing_scope")
        if method.startswith("chat.") and args.get("channel") in self.channels_without_bot:
            return self._fail(call, "not_in_channel")  # removed from the channel: no writes at all
        result = handler(args)
        if isinstance(result, str):
            return self._fail(call, result)
        return web.json_response({"ok": True, **result})

    def _fail(self, call: Call, error: str) -> web.Response:
        call.ok, call.error = False, error
        return web.json_response({"ok": False, "error": error})

    def _rate_check(self, method: str, args: dict, now: float) -> float:
        limit = self.tier_limits.get(method)
        wait = 0.0
        if method == "chat.postMessage":
            wait = self._limiter.check(
                ("post", args.get("channel")), self.post_burst, self.post_burst * self.post_interval, now
            )
        elif limit is not None and self.limits is LimitMode.BUCKETS:
            wait = self._buckets.check((method, TEAM_ID), limit, self.window, now)
        elif limit is not None:
            wait = self._limiter.check((method, TEAM_ID), limit, self.window, now)
        return wait

    # content validation shared by postMessage and update
    def _content(self, args: dict) -> tuple[str, list[dict]] | str:
        text, md, blocks = args.get("text"), args.get("markdown_text"), args.get("blocks") or []
        if md is not None and (text or blocks):
            return "markdown_text_conflict"
        if md is not None:
            if utf16_len(md) > STREAM_MAX_CHARS:
                return "msg_too_long"
            return md, []
        if invalid_blocks(blocks):
            return "invalid_blocks"
        md_blocks = [b for b in blocks if b.get("type") == "markdown"]
        if sum(utf16_len(b.get("text", "")) for b in md_blocks) > MARKDOWN_BLOCKS_MAX:
            return "invalid_blocks"
        for block in blocks:
            if block.get("type") == "section" and utf16_len(block.get("text", {}).get("text", "")) > 3000:
                return "invalid_blocks"
        if text and utf16_len(text) > TEXT_MAX_CHARS:
            return "msg_too_long"
        shown = "\n".join(b["text"] for b in md_blocks) if md_blocks else (text or "")
        if not shown and not blocks:
            return "no_text"
        return shown, list(blocks)

    def _bot_posted(self, channel: str, thread_ts: str | None) -> None:
        if thread_ts and self.status_clears_on_reply and self.status.get((channel, thread_ts)):
            self.status[(channel, thread_ts)] = ""

    def _m_auth_test(self, args: dict) -> dict:
        return {
            "url": "https://fake.slack.com/",
            "team": "Fake Team",
            "user": "chatbot",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _m_apps_connections_open(self, args: dict) -> dict:
        return {"url": f"ws://127.0.0.1:{self.port}/link/?ticket=fake-ticket"}

    def _m_chat_postMessage(self, args: dict) -> dict | str:
        channel = args.get("channel")
        if not channel:
            return "channel_not_found"
        if channel in self.channels_without_bot:
            return "not_in_channel"
        content = self._content(args)
        if isinstance(content, str):
            return content
        ts = self.new_ts()
        thread_ts = args.get("thread_ts")
        self.messages[(channel, ts)] = FakeMessage(
            channel, ts, BOT_USER_ID, content[0], content[1], thread_ts=thread_ts, bot=True
        )
        self._bot_posted(channel, thread_ts)
        return {"channel": channel, "ts": ts, "message": {"ts": ts, "text": content[0]}}

    def _m_chat_update(self, args: dict) -> dict | str:
        msg = self.messages.get((args.get("channel"), args.get("ts")))
        if msg is None:
            return "message_not_found"
        if not msg.bot:
            return "cant_update_message"
        self._expire(msg)
        if msg.streaming:
            return "cant_update_message"
        content = self._content(args)
        if isinstance(content, str):
            return content
        msg.text, msg.blocks = content
        msg.edits += 1
        return {"channel": msg.channel, "ts": msg.ts, "text": msg.text}

    def _stream_text(self, args: dict) -> str:
        text = args.get("markdown_text") or ""
        for chunk in args.get("chunks") or []:
            if chunk.get("type") == "markdown_text":
                text += chunk.get("text", "")
        return text

    @staticmethod
    def _other_chunks(args: dict) -> list[dict] | str:
        """The non-text chunks of a stream call, checked as slack_sdk 3.48's chunk models
        describe them; an error code for a malformed one."""
        out = []
        for chunk in args.get("chunks") or []:
            kind = chunk.get("type")
            if kind == "markdown_text":
                continue
            if kind == "task_update":
                if (
                    not chunk.get("id")
                    or not chunk.get("title")
                    or chunk.get("status") not in ("pending", "in_progress", "complete", "error")
                ):
                    return "invalid_chunks"
            elif kind == "plan_update":
                if not chunk.get("title"):
                    return "invalid_chunks"
            elif kind != "blocks":
                return "invalid_chunks"
            out.append(dict(chunk))
        return out

    def _expire(self, msg: FakeMessage) -> None:
        if msg.streaming and time.monotonic() - msg.stream_started > self.stream_ttl:
            msg.streaming, msg.stream_expired = False, True

    def _m_chat_startStream(self, args: dict) -> dict | str:
        channel, thread_ts = args.get("channel"), args.get("thread_ts")
        if self.streaming_error:
            return self.streaming_error
        if not channel or not thread_ts:
            return "invalid_arguments"
        if not channel.startswith("D") and not (args.get("recipient_user_id") and args.get("recipient_team_id")):
            return "missing_recipient_user_id"
        text = self._stream_text(args)
        if utf16_len(text) > STREAM_MAX_CHARS:
            return "msg_too_long"
        chunks = self._other_chunks(args)
        if isinstance(chunks, str):
            return chunks
        if args.get("task_display_mode") not in (None, "timeline", "plan"):
            return "invalid_arguments"
        ts = self.new_ts()
        self.messages[(channel, ts)] = FakeMessage(
            channel,
            ts,
            BOT_USER_ID,
            text,
            thread_ts=thread_ts,
            bot=True,
            streaming=True,
            stream_started=time.monotonic(),
            recipient_user_id=args.get("recipient_user_id"),
            chunks=chunks,
            task_display_mode=args.get("task_display_mode"),
        )
        self._bot_posted(channel, thread_ts)
        return {"channel": channel, "ts": ts}

    def _streaming_message(self, args: dict) -> FakeMessage | str:
        msg = self.messages.get((args.get("channel"), args.get("ts")))
        if msg is None:
            return "message_not_found"
        self._expire(msg)
        if not msg.streaming:
            return "message_not_in_streaming_state"
        return msg

    def _m_chat_appendStream(self, args: dict) -> dict | str:
        msg = self._streaming_message(args)
        if isinstance(msg, str):
            return msg
        text = self._stream_text(args)
        chunks = self._other_chunks(args)
        if isinstance(chunks, str):
            return chunks
        if not text and not chunks:
            return "no_text"
        if utf16_len(msg.text + text) > STREAM_MAX_CHARS:
            return "msg_too_long"
        msg.text += text
        msg.chunks.extend(chunks)
        return {"channel": msg.channel, "ts": msg.ts}

    def _m_chat_stopStream(self, args: dict) -> dict | str:
        msg = self._streaming_message(args)
        if isinstance(msg, str):
            return msg
        text = self._stream_text(args)
        if utf16_len(msg.text + text) > STREAM_MAX_CHARS:
            return "msg_too_long"
        if invalid_blocks(args.get("blocks") or []):
            return "invalid_blocks"
        chunks = self._other_chunks(args)
        if isinstance(chunks, str):
            return chunks
        msg.chunks.extend(chunks)
        msg.text += text
        msg.blocks = list(args.get("blocks") or [])
        msg.streaming = False
        return {"channel": msg.channel, "ts": msg.ts, "message": {"ts": msg.ts, "text": msg.text}}

    def _m_assistant_threads_setStatus(self, args: dict) -> dict | str:
        key = (args.get("channel_id"), args.get("thread_ts"))
        if not key[0] or not key[1]:
            return "invalid_thread_ts"
        self.status[key] = args.get("status", "")
        self.status_history.append((key[0], key[1], args.get("status", "")))
        return {}

    def _assistant_place(self, args: dict, *, thread_required: bool) -> str | None:
        """Why Slack refuses an assistant.threads.* call here, or None: these live only in the
        app's DM with a user (its assistant / agent view); in a channel the id is no assistant
        channel (``channel_not_found``), and a thread_ts must be an assistant thread or a
        message in that DM (``invalid_thread_ts``, "Thread not found")."""
        channel, thread_ts = args.get("channel_id"), args.get("thread_ts")
        if not channel or not str(channel).startswith("D"):
            return "channel_not_found"
        if not thread_ts:
            return "invalid_thread_ts" if thread_required else None
        if (channel, thread_ts) in self.assistant_threads or (channel, thread_ts) in self.messages:
            return None
        return "invalid_thread_ts"

    def _m_assistant_threads_setSuggestedPrompts(self, args: dict) -> dict | str:
        prompts = args.get("prompts") or []
        if not prompts or len(prompts) > 4:
            return "invalid_arguments"
        refused = self._assistant_place(args, thread_required=False)  # the agent view: no thread_ts
        if refused:
            return refused
        self.suggested_prompts[(args.get("channel_id"), args.get("thread_ts"))] = prompts
        return {}

    def _m_assistant_threads_setTitle(self, args: dict) -> dict | str:
        refused = self._assistant_place(args, thread_required=True)
        if refused:
            return refused
        if not args.get("title"):
            return "invalid_arguments"
        self.titles[(args.get("channel_id"), args.get("thread_ts"))] = args.get("title", "")
        return {}

    def _m_conversations_replies(self, args: dict) -> dict | str:
        channel, ts = args.get("channel"), args.get("ts")
        if (channel, ts) not in self.messages:
            return "thread_not_found"
        out = []
        for m in self.thread(channel, ts):
            item = {"type": "message", "ts": m.ts, "text": m.text, "user": m.user}
            if m.thread_ts:
                item["thread_ts"] = m.thread_ts
            if m.bot:
                item["bot_id"] = BOT_ID
            out.append(item)
        return {"messages": out, "has_more": False}

    def _m_files_info(self, args: dict) -> dict | str:
        f = self.files.get(args.get("file", ""))
        if f is None:
            return "file_not_found"
        return {"file": self._file_object(f)}

    def _m_files_getUploadURLExternal(self, args: dict) -> dict | str:
        name, length = args.get("filename"), str(args.get("length", ""))
        if not name or not length.isdigit() or int(length) <= 0:
            return "invalid_arguments"
        fid = f"F{len(self.files) + len(self.uploads) + 1:08d}"
        self.uploads[fid] = {"filename": name, "length": int(length), "data": None}
        return {"upload_url": f"http://127.0.0.1:{self.port}/upload/v1/{fid}", "file_id": fid}

    def _m_files_completeUploadExternal(self, args: dict) -> dict | str:
        files = args.get("files")
        if not isinstance(files, list) or not files:
            return "invalid_arguments"
        channel, thread_ts = args.get("channel_id"), args.get("thread_ts")
        if channel in self.channels_without_bot:
            return "not_in_channel"
        done = []
        for item in files:
            pending = self.uploads.get(item.get("id", "")) if isinstance(item, dict) else None
            if pending is None:
                return "file_not_found"
            if pending["data"] is None or len(pending["data"]) != pending["length"]:
                return "file_upload_not_completed"
            done.append((item, pending))
        shared = []
        for item, pending in done:
            name = pending["filename"]
            mime = (
                "image/png"
                if name.endswith(".png")
                else "application/json"
                if name.endswith(".json")
                else "application/octet-stream"
            )
            fid = item["id"]
            del self.uploads[fid]
            self.files[fid] = FakeFile(fid, name, mime, pending["data"], len(pending["data"]))
            shared.append({**self._file_object(self.files[fid]), "title": item.get("title") or name})
        if channel:
            ts = self.new_ts()
            self.messages[(channel, ts)] = FakeMessage(
                channel,
                ts,
                BOT_USER_ID,
                args.get("initial_comment") or "",
                thread_ts=thread_ts,
                bot=True,
                files=[{"id": f["id"]} for f in shared],
            )
            self._bot_posted(channel, thread_ts)
        return {"files": [{"id": f["id"], "title": f["title"]} for f in shared]}

    def _m_users_info(self, args: dict) -> dict | str:
        uid = args.get("user", "")
        if uid not in self.users:
            return "user_not_found"
        name = self.users[uid]
        return {
            "user": {
                "id": uid,
                "name": name,
                "real_name": name.title(),
                "profile": {"display_name": name.title(), "real_name": name.title()},
            }
        }

    def _m_chat_postEphemeral(self, args: dict) -> dict | str:
        """Shown to ``user`` alone, in the channel or (with thread_ts) the thread; Slack refuses
        a user who is not a member of the channel (``user_not_in_channel``)."""
        channel, user = args.get("channel"), args.get("user")
        if not channel:
            return "channel_not_found"
        if not user or user not in self.users:
            return "user_not_found"
        if channel in self.channels_without_bot:
            return "not_in_channel"
        if user not in self.members.get(channel, set(self.users)):
            return "user_not_in_channel"
        content = self._content(args)
        if isinstance(content, str):
            return content
        ts = self.new_ts()
        self.ephemerals.append(FakeEphemeral(channel, user, ts, content[0], content[1], args.get("thread_ts")))
        return {"message_ts": ts}

    def _m_response_url(self, args: dict) -> dict:
        self.responses.append(args)
        return {}
