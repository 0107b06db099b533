"""CardKit card entities as the fake Feishu keeps them: validation of card JSON 2.0, the
streaming-mode state machine and the per-card ``sequence`` rule.

Pure logic with no I/O; ``tests/fakes/feishu_api.py`` serves it over HTTP. Error codes and
messages are the ones in Feishu's CardKit reference (cardkit-v1 card / card-element pages):
every error there is HTTP 400 with one of these codes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

CARD_MAX_BYTES = 30 * 1024  # "请将卡片大小控制在 30KB 以内": measured here as UTF-8 bytes of the JSON
MAX_ELEMENTS = 200
CONTENT_MAX_CHARS = 100_000
SEQUENCE_MAX = 2**31 - 1
STREAMABLE_TAGS = frozenset({"markdown", "plain_text"})
ELEMENT_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,19}$")

# code -> msg, as Feishu words them
INVALID_PARAM = 10002
GENERATE_FAILED = 200220
CARD_NOT_FOUND = 200740
UUID_CONFLICT = 200770
STREAMING_TIMEOUT = 200850
CARD_TOO_BIG = 200860
DUPLICATE_ELEMENT_ID = 300301
UPDATE_MULTI_FALSE = 300302
SCHEMA_NOT_2 = 300303
TOO_MANY_ELEMENTS = 300305
EMPTY_DSL = 300307
STREAMING_CLOSED = 300309
ONLY_TEXT = 300310
ELEMENT_NOT_FOUND = 300313
SEQUENCE_OUT_OF_ORDER = 300317
MESSAGES: dict[int, str] = {
    INVALID_PARAM: "Your request contains an invalid request parameter.",
    GENERATE_FAILED: "Failed to generate card content",
    CARD_NOT_FOUND: "The card entity does not exist",
    UUID_CONFLICT: "UUID conflict",
    STREAMING_TIMEOUT: "card streaming timeout",
    CARD_TOO_BIG: "Card content exceeds limit.",
    DUPLICATE_ELEMENT_ID: "Duplicate element_id in card component.",
    UPDATE_MULTI_FALSE: "update_multi property is false",
    SCHEMA_NOT_2: "Only schema 2.0 is supported",
    TOO_MANY_ELEMENTS: "The number of card components exceeds 200",
    EMPTY_DSL: "The card DSL is empty",
    STREAMING_CLOSED: "streaming mode is closed",
    ONLY_TEXT: "Only update text",
    ELEMENT_NOT_FOUND: "Failed to update element properties: element not found",
    SEQUENCE_OUT_OF_ORDER: "The sequence number for operating on the card did not increment consecutively",
}

CardOp = Literal[
    "create", "content", "settings", "update", "element.add", "element.update", "element.patch", "element.delete"
]
ClosedBy = Literal["settings", "update", "timeout", "idle"]


class CardError(Exception):
    def __init__(self, code: int, msg: str | None = None) -> None:
        super().__init__(msg or MESSAGES[code])
        self.code = code
        self.msg = msg or MESSAGES[code]


@dataclass(frozen=True)
class StreamingRules:
    """How long streaming mode stays open, in the fake's (scaled) seconds."""

    ttl: float = 600.0  # Feishu closes streaming mode 10 minutes after it was opened
    idle_ttl: float | None = None  # optional: closed after this long without an update


@dataclass
class CardUpdate:
    """One operation on a card, as the bot sent it, and what the fake answered."""

    op: CardOp
    at: float
    sequence: int | None
    element_id: str | None = None
    content: str | None = None
    code: int = 0
    text: str = ""  # what the card reads after the operation


def walk_elements(node: Any) -> Iterator[dict]:
    """Every component dict (anything with a ``tag``) inside ``node``, depth first."""
    if isinstance(node, dict):
        if "tag" in node:
            yield node
        for value in node.values():
            yield from walk_elements(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk_elements(item)


# Components a reader clicks rather than reads: their labels are not the message's text.
INTERACTIVE_TAGS = frozenset(
    {
        "button",
        "select_static",
        "multi_select_static",
        "overflow",
        "input",
        "date_picker",
        "picker_time",
        "picker_datetime",
        "select_person",
        "multi_select_person",
        "checker",
        "select_img",
    }
)


def readable(node: Any) -> list[str]:
    """The Markdown and plain-text contents a reader reads, in order (controls' labels left out)."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("tag") in INTERACTIVE_TAGS:
            return found
        if node.get("tag") in STREAMABLE_TAGS and isinstance(node.get("content"), str):
            found.append(node["content"])
        for value in node.values():
            found += readable(value)
    elif isinstance(node, list):
        for item in node:
            found += readable(item)
    return found


def controls(node: Any) -> list[dict]:
    """Every interactive component: its tag, its callback value, its options' values (a select)."""
    found = []
    for element in walk_elements(node):
        if element.get("tag") in INTERACTIVE_TAGS:
            value = next(
                (b.get("value") for b in element.get("behaviors") or () if b.get("type") == "callback"),
                element.get("value"),
            )
            found.append(
                {
                    "tag": element["tag"],
                    "value": value,
                    "options": [o.get("value") for o in element.get("options") or ()],
                }
            )
    return found


def card_size(data: dict) -> int:
    return len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())


def validate_card(data: Any) -> dict:
    """The card JSON as Feishu would accept it for a CardKit entity, or a CardError."""
    if isinstance(data, str):
        if not data.strip():
            raise CardError(EMPTY_DSL)
        try:
            data = json.loads(data)
        except ValueError:
            raise CardError(GENERATE_FAILED) from None
    if not isinstance(data, dict):
        raise CardError(GENERATE_FAILED)
    if data.get("schema") != "2.0":
        raise CardError(SCHEMA_NOT_2)
    config = data.get("config") or {}
    if config.get("update_multi") is False:
        raise CardError(UPDATE_MULTI_FALSE)
    ids: list[str] = []
    count = 0
    for element in walk_elements(data.get("body", {})):
        count += 1
        if "element_id" in element:
            element_id = element["element_id"]
            if not isinstance(element_id, str) or not ELEMENT_ID.match(element_id):
                raise CardError(INVALID_PARAM, f"invalid element_id {element_id!r}")
            ids.append(element_id)
    if len(ids) != len(set(ids)):
        raise CardError(DUPLICATE_ELEMENT_ID)
    if count > MAX_ELEMENTS:
        raise CardError(TOO_MANY_ELEMENTS)
    if card_size(data) > CARD_MAX_BYTES:
        raise CardError(CARD_TOO_BIG)
    return data


@dataclass
class FakeCard:
    """A card entity: its current JSON, whether streaming is open, and every update."""

    card_id: str
    data: dict
    created_at: float
    rules: StreamingRules = field(default_factory=StreamingRules)
    streaming: bool = False
    opened_at: float | None = None
    last_write_at: float = 0.0
    closed_by: ClosedBy | None = None
    timeout_reported: bool = False  # the first write after an automatic close got 200850
    last_sequence: int = 0
    updates: list[CardUpdate] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)
    uuids: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.last_write_at = self.created_at
        if (self.data.get("config") or {}).get("streaming_mode") is True:
            self._open(self.created_at)

    # --- what tests read ---
    def element(self, element_id: str) -> dict | None:
        return next((e for e in walk_elements(self.data) if e.get("element_id") == element_id), None)

    @property
    def text(self) -> str:
        """The text a reader sees: markdown and plain_text contents of the body, in order (the
        labels of buttons and selects are not read as text)."""
        return "\n".join(p for p in readable(self.data.get("body", {})) if p)

    def text_at(self, at: float) -> str:
        """What the card read at ``at`` (monotonic): after the last operation before then."""
        return next((u.text for u in reversed(self.updates) if u.at <= at and not u.code), "")

    def generating(self, now: float) -> bool:
        """Still "生成中" in the chat list: streaming never closed by the bot (an automatic
        close on timeout does not count: peers report such cards stay stuck)."""
        self.expire(now)
        return self.streaming or self.closed_by in ("timeout", "idle")

    @property
    def content_updates(self) -> list[CardUpdate]:
        return [u for u in self.updates if u.op == "content"]

    # --- state machine ---
    def _open(self, now: float) -> None:
        self.streaming, self.opened_at, self.closed_by, self.timeout_reported = True, now, None, False
        self.last_write_at = now

    def _close(self, how: ClosedBy) -> None:
        self.streaming, self.closed_by = False, how

    def expire(self, now: float) -> None:
        if not self.streaming or self.opened_at is None:
            return
        if now - self.opened_at >= self.rules.ttl:
            self._close("timeout")
        elif self.rules.idle_ttl is not None and now - self.last_write_at >= self.rules.idle_ttl:
            self._close("idle")

    def _check_uuid(self, uuid: str | None) -> None:
        if uuid:
            if uuid in self.uuids:
                raise CardError(UUID_CONFLICT)

    def _check_sequence(self, sequence: Any) -> int:
        if not isinstance(sequence, int) or isinstance(sequence, bool) or not 1 <= sequence <= SEQUENCE_MAX:
            raise CardError(INVALID_PARAM, "sequence must be a positive int32")
        if sequence <= self.last_sequence:
            raise CardError(SEQUENCE_OUT_OF_ORDER)
        return sequence

    def _commit(self, sequence: int, uuid: str | None, now: float) -> None:
        self.last_sequence = sequence
        self.last_write_at = now
        if uuid:
            self.uuids.add(uuid)

    def set_content(self, element_id: str, content: Any, sequence: Any, uuid: str | None, now: float) -> None:
        """PUT …/elements/{element_id}/content: the full text so far (typewriter when the old
        text is a prefix of the new one)."""
        self.expire(now)
        self._check_uuid(uuid)
        element = self.element(element_id)
        if element is None:
            raise CardError(ELEMENT_NOT_FOUND)
        if element.get("tag") not in STREAMABLE_TAGS:
            raise CardError(ONLY_TEXT)
        if not self.streaming:
            if self.closed_by in ("timeout", "idle") and not self.timeout_reported:
                self.timeout_reported = True
                raise CardError(STREAMING_TIMEOUT)
            raise CardError(STREAMING_CLOSED)
        seq = self._check_sequence(sequence)
        if not isinstance(content, str) or not 1 <= len(content) <= CONTENT_MAX_CHARS:
            raise CardError(INVALID_PARAM, "content must be 1-100000 characters")
        old = element.get("content")
        element["content"] = content
        if card_size(self.data) > CARD_MAX_BYTES:
            element["content"] = old
            raise CardError(CARD_TOO_BIG)
        self._commit(seq, uuid, now)

    def set_settings(self, settings: Any, sequence: Any, uuid: str | None, now: float) -> None:
        """PATCH …/settings with ``settings`` = a JSON string of {"config": …, "card_link": …}."""
        self.expire(now)
        self._check_uuid(uuid)
        try:
            parsed = json.loads(settings) if isinstance(settings, str) else None
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise CardError(INVALID_PARAM, "settings must be a JSON object string")
        seq = self._check_sequence(sequence)
        config = parsed.get("config") or {}
        if config.get("update_multi") is False:
            raise CardError(UPDATE_MULTI_FALSE)
        self.data.setdefault("config", {}).update(config)
        if "card_link" in parsed:
            self.data["card_link"] = parsed["card_link"]
        if config.get("streaming_mode") is True and not self.streaming:
            self._open(now)
        elif config.get("streaming_mode") is False and self.streaming:
            self._close("settings")
        self._commit(seq, uuid, now)

    def replace(self, card: Any, sequence: Any, uuid: str | None, now: float) -> None:
        """PUT /cardkit/v1/cards/{card_id}: the whole card anew (its config decides streaming)."""
        self.expire(now)
        self._check_uuid(uuid)
        if not isinstance(card, dict) or card.get("type") != "card_json":
            raise CardError(INVALID_PARAM, "card.type must be card_json")
        data = validate_card(card.get("data"))
        seq = self._check_sequence(sequence)
        self.data = data
        wants = (data.get("config") or {}).get("streaming_mode") is True
        if wants and not self.streaming:
            self._open(now)
        elif not wants and self.streaming:
            self._close("update")
        self._commit(seq, uuid, now)

    def _siblings(self, element_id: str) -> tuple[list, int]:
        def search(node: Any) -> tuple[list, int] | None:
            if isinstance(node, list):
                for i, item in enumerate(node):
                    if isinstance(item, dict) and item.get("element_id") == element_id:
                        return node, i
            for child in node.values() if isinstance(node, dict) else node if isinstance(node, list) else ():
                found = search(child)
                if found:
                    return found
            return None

        found = search(self.data.get("body", {}))
        if found is None:
            raise CardError(ELEMENT_NOT_FOUND)
        return found

    def change_elements(self, op: CardOp, body: dict, element_id: str | None, now: float) -> None:
        """The component operations: add (insert_before / insert_after / append), update
        (replace one), patch (merge properties), delete."""
        self.expire(now)
        uuid = body.get("uuid")
        self._check_uuid(uuid)
        before = json.dumps(self.data)
        try:
            if op == "element.add":
                elements = json.loads(body.get("elements") or "null")
                if not isinstance(elements, list) or not elements:
                    raise CardError(INVALID_PARAM, "elements must be a JSON array string")
                where = body.get("type", "append")
                if where == "append":
                    self.data.setdefault("body", {}).setdefault("elements", []).extend(elements)
                else:
                    siblings, i = self._siblings(body.get("target_element_id", ""))
                    siblings[i + (where == "insert_after") : i + (where == "insert_after")] = elements
            elif op == "element.update":
                siblings, i = self._siblings(element_id or "")
                siblings[i] = json.loads(body.get("element") or "null")
            elif op == "element.patch":
                siblings, i = self._siblings(element_id or "")
                siblings[i].update(json.loads(body.get("partial_element") or "{}"))
            elif op == "element.delete":
                siblings, i = self._siblings(element_id or "")
                del siblings[i]
            validate_card(self.data)
            seq = self._check_sequence(body.get("sequence"))
        except (CardError, ValueError) as exc:
            self.data = json.loads(before)
            if isinstance(exc, CardError):
                raise
            raise CardError(INVALID_PARAM) from None
        self._commit(seq, uuid, now)
