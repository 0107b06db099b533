"""The world the fake Feishu keeps: users, chats, messages (with their resources), the calls
the bot made, the limits it enforces. ``feishu_api.FakeFeishu`` serves it."""

from __future__ import annotations

import json
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.fakes.feishu_cards import FakeCard, readable


@dataclass(frozen=True)
class FeishuLimits:
    chat_per_second: int = 5  # send + reply, per p2p user and per group (shared by all bots there)
    card_per_second: int = 10  # CardKit operations on one card
    patch_per_second: int = 5  # PATCH of one card message
    ephemeral_per_second: int = 40  # cards for one person (ephemeral/v1/send), per group
    api_per_second: int = 50  # each API, per app
    api_per_minute: int = 1000


@dataclass(frozen=True)
class FakeUser:
    name: str
    open_id: str
    user_id: str
    union_id: str
    is_bot: bool = False

    def ids(self) -> dict[str, str]:
        return {"union_id": self.union_id, "user_id": self.user_id, "open_id": self.open_id}


@dataclass
class FakeChat:
    chat_id: str
    chat_type: Literal["p2p", "group"]
    name: str
    mode: Literal["p2p", "group", "topic"]
    user: FakeUser | None = None  # the other side of a p2p chat
    bot_member: bool = True
    members: set[str] = field(default_factory=set)  # people's open_ids (whoever wrote there joined)


@dataclass
class Resource:
    key: str
    kind: Literal["image", "file"]
    data: bytes
    content_type: str
    file_name: str


@dataclass
class FakeMessage:
    message_id: str
    chat_id: str
    msg_type: str
    content: str  # the JSON string, as on the wire
    sender_id: str  # a user's open_id, or the app_id for the bot
    from_bot: bool
    create_time: int  # ms
    root_id: str | None = None
    parent_id: str | None = None
    thread_id: str | None = None
    uuid: str | None = None
    edits: int = 0
    updated: bool = False
    card: FakeCard | None = None  # a CardKit entity sent as {"type": "card", "data": {"card_id"}}
    mentions: list[dict] = field(default_factory=list)
    resources: dict[str, Resource] = field(default_factory=dict)
    visible_to: str | None = None  # a card only this person (open_id) sees (ephemeral/v1/send)
    recalled: bool = False  # taken back by its sender (撤回): no longer readable by its id

    @property
    def body(self) -> Any:
        return json.loads(self.content)

    @property
    def card_id(self) -> str | None:
        return self.card.card_id if self.card else None

    @property
    def text(self) -> str:
        """What a reader sees: the text, the post's text runs, or the card's markdown (live)."""
        body = self.body
        if self.msg_type == "text":
            return body.get("text", "")
        if self.card is not None:
            return self.card.text
        if self.msg_type == "post":
            post = body.get("post", body)
            locale = next(iter(post.values()), {}) if "content" not in post else post
            return "\n".join("".join(n.get("text", "") for n in line) for line in locale.get("content", []))
        if self.msg_type == "interactive":
            return "\n".join(p for p in readable(body.get("body", body)) if p)
        return ""

    @property
    def card_json(self) -> dict | None:
        """The card this message shows now: a CardKit entity's current JSON, or the inline card."""
        if self.card is not None:
            return self.card.data
        return self.body if self.msg_type == "interactive" else None


@dataclass
class Call:
    api: str  # e.g. "im.message.create", "cardkit.card_element.content"
    method: str
    path: str
    query: dict[str, str]
    body: Any
    at: float
    status: int = 200
    code: int = 0
    msg: str = "success"
    deduplicated: bool = False  # answered from an earlier call with the same uuid
    reset: float | None = None  # a 429's x-ogw-ratelimit-reset (seconds)


class ApiError(Exception):
    def __init__(self, status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg, self.headers = status, code, msg, headers or {}


class Windows:
    """Sliding windows: at most ``limit`` calls in any ``window`` seconds per key."""

    def __init__(self) -> None:
        self._calls: dict[Any, deque[float]] = defaultdict(deque)

    def take(self, key: Any, limit: int, window: float, now: float) -> float:
        """0 if the call may go now (and counts it), else the seconds until it may."""
        calls = self._calls[key]
        while calls and calls[0] <= now - window:
            calls.popleft()
        if len(calls) >= limit:
            return calls[0] + window - now
        calls.append(now)
        return 0.0
