"""Bot API 10.1–10.3 features that python-telegram-bot 22.8 (Bot API 10.0) does not know:
rich messages and ephemeral messages. The surface calls them through ``Bot.do_api_request``;
this module decides when an answer is worth a rich message, builds the ``InputRichMessage``
and remembers, per bot, a feature Telegram refused.

Rich messages (10.1): ``sendRichMessage``, ``rich_message`` on ``editMessageText`` and
``sendRichMessageDraft`` take an ``InputRichMessage`` with exactly one of ``html``,
``markdown`` or ``blocks``; the answer's Markdown goes in ``markdown`` as it is. The type has
no plain-text fallback field: a client that cannot show rich messages is Telegram's concern.
Limits ("Rich Message Limits"): 32,768 characters of text, 500 blocks (list items and table
rows count), 16 levels of nesting, 20 table columns.

Ephemeral messages (10.2, parameters moved into ``EphemeralMessageParameters`` in 10.3): a
send with ``ephemeral_message_parameters = {"receiver_user_id": …}`` is shown to that user
alone; the sent Message carries ``ephemeral_message_id``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

from markdown_it import MarkdownIt
from telegram.error import BadRequest, EndPointNotFound, TelegramError

log = logging.getLogger(__name__)

RICH_TEXT_LIMIT = 32_768  # characters of text in one rich message
RICH_BLOCK_LIMIT = 500
RICH_DEPTH_LIMIT = 16
RICH_COLUMN_LIMIT = 20
# A page the core may fill when it can end as one rich message (a private chat's draft):
# below the limit, as the core cuts by the source and the reply may still need a fallback.
RICH_PAGE = 30_000

# What a Bot API server that lacks a method or parameter answers: 404 for an unknown method;
# a 400 naming the parameter or the feature for the rest (no wording is documented).
_UNSUPPORTED = (
    "method not found",
    "unknown method",
    "unknown parameter",
    "not supported",
    "is not available",
    "are not available",
    "not enabled",
)
# Block tokens Telegram counts towards its block limit (an over-count is harmless).
_BLOCKS = {
    "paragraph_open",
    "heading_open",
    "bullet_list_open",
    "ordered_list_open",
    "list_item_open",
    "blockquote_open",
    "table_open",
    "tr_open",
    "fence",
    "code_block",
    "hr",
    "html_block",
}
# Structure that a formatted message shows poorly and a rich message shows as it is meant.
_STRUCTURE = {"heading_open", "table_open", "bullet_list_open", "ordered_list_open", "fence", "code_block"}


class Support(StrEnum):
    UNKNOWN = "unknown"  # not tried yet on this bot
    YES = "yes"
    NO = "no"  # Telegram refused it: not tried again while this process runs


@dataclass
class Capability:
    """One optional Bot API feature, as this bot found it."""

    name: str
    fallback: str
    state: Support = Support.UNKNOWN

    @property
    def usable(self) -> bool:
        return self.state is not Support.NO

    def worked(self) -> None:
        self.state = Support.YES

    def refused(self, reason: str) -> None:
        if self.state is not Support.NO:  # said once, not for every answer
            log.info("telegram: %s are not available to this bot (%s); using %s", self.name, reason, self.fallback)
        self.state = Support.NO


@dataclass
class Capabilities:
    rich: Capability = field(default_factory=lambda: Capability("rich messages", "formatted messages"))
    ephemeral: Capability = field(
        default_factory=lambda: Capability("ephemeral messages", "replies everyone in the chat sees")
    )


def is_unsupported(exc: TelegramError) -> bool:
    """Telegram does not know the method or parameter (an older Bot API server)."""
    if isinstance(exc, EndPointNotFound):
        return True
    return isinstance(exc, BadRequest) and any(s in exc.message.lower() for s in _UNSUPPORTED)


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    """GitHub-flavoured enough for the model's answers: tables and strikethrough, no HTML."""
    return MarkdownIt("commonmark", {"html": False}).enable("table").enable("strikethrough")


@dataclass(frozen=True, slots=True)
class Shape:
    structured: bool  # headings, tables, lists or code
    fits: bool  # within every documented rich message limit


@lru_cache(maxsize=16)  # a final write asks twice; a draft's growing text is new each time
def shape(markdown: str) -> Shape:
    """What the answer's Markdown holds, by a real Markdown parser (a "#" inside code or a
    "1." inside a sentence is no structure)."""
    if len(markdown) > RICH_TEXT_LIMIT:
        return Shape(structured=False, fits=False)
    tokens = _parser().parse(markdown)
    structured = any(t.type in _STRUCTURE for t in tokens)
    blocks = sum(1 for t in tokens if t.type in _BLOCKS)
    depth = max((t.level for t in tokens), default=0)
    columns, row = 0, 0
    for t in tokens:
        if t.type == "tr_open":
            row = 0
        elif t.type in ("th_open", "td_open"):
            row += 1
            columns = max(columns, row)
    fits = blocks <= RICH_BLOCK_LIMIT and depth < RICH_DEPTH_LIMIT and columns <= RICH_COLUMN_LIMIT
    return Shape(structured=structured, fits=fits)


def input_rich(markdown: str) -> str:
    """The ``InputRichMessage`` for ``markdown``, as the JSON the Bot API takes."""
    return json.dumps({"markdown": markdown}, ensure_ascii=False)


def ephemeral_to(user_id: int) -> str:
    """``EphemeralMessageParameters`` for a message only ``user_id`` sees."""
    return json.dumps({"receiver_user_id": user_id})
