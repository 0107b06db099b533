"""Answer text → what Telegram shows: plain text for intermediate writes, Markdown
rendered to text + entities (telegramify-markdown) for final ones, split into messages of
at most 4096 UTF-16 units on paragraph or sentence boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import telegramify_markdown
from telegram import MessageEntity

from bot.platform import split_point, utf16_len

TEXT_LIMIT = 4096  # Telegram's limit, in UTF-16 code units after entity parsing
REASONING_LIMIT = 1500  # the reasoning shown above an answer is cut to this many units


@dataclass(frozen=True, slots=True)
class Rendered:
    """One Telegram message's text and its entities (offsets in UTF-16 units)."""

    text: str
    entities: tuple[MessageEntity, ...] = field(default=())


def plain(text: str) -> Rendered:
    """Intermediate text: no parsing at all, so half-written Markdown cannot break it."""
    return Rendered(_cut(text.strip() or "…", TEXT_LIMIT))


def markdown(text: str, *, reasoning: str = "") -> list[Rendered]:
    """Final text: Markdown → text + entities, split into messages that fit."""
    try:
        body, entities = telegramify_markdown.convert(text)
        converted = [_ptb_entity(e.to_dict()) for e in entities]
    except Exception:  # noqa: BLE001 - a converter bug must not lose the answer
        body, converted = text, []
    if reasoning.strip():
        body, converted = _with_reasoning(reasoning.strip(), body, converted)
    return split(body, converted)


def split(text: str, entities: list[MessageEntity], limit: int = TEXT_LIMIT) -> list[Rendered]:
    """Cut at paragraph, line, sentence or space boundaries; entities are clipped per piece."""
    pieces: list[Rendered] = []
    start = 0  # python index into text
    start16 = 0  # the same position in UTF-16 units
    while start < len(text):
        rest = text[start:]
        cut = split_point(rest, limit, utf16_len)
        piece = rest[:cut]
        kept = piece.rstrip()
        lead = len(kept) - len(kept.lstrip())
        kept = kept.lstrip()
        if kept:
            offset16 = start16 + utf16_len(piece[:lead])
            pieces.append(Rendered(kept, tuple(_clip(entities, offset16, utf16_len(kept)))))
        start += cut
        start16 += utf16_len(piece)
    return pieces or [Rendered("…")]


def _clip(entities: list[MessageEntity], start: int, length: int) -> list[MessageEntity]:
    out = []
    end = start + length
    for e in entities:
        lo, hi = max(e.offset, start), min(e.offset + e.length, end)
        if hi > lo:
            out.append(
                MessageEntity(
                    e.type,
                    lo - start,
                    hi - lo,
                    url=e.url,
                    user=e.user,
                    language=e.language,
                    custom_emoji_id=e.custom_emoji_id,
                )
            )
    return out


def _with_reasoning(reasoning: str, body: str, entities: list[MessageEntity]) -> tuple[str, list[MessageEntity]]:
    """The model's reasoning as an expandable blockquote above the answer."""
    shown = _cut(reasoning, REASONING_LIMIT)
    head = shown + "\n\n"
    shift = utf16_len(head)
    quote = MessageEntity(MessageEntity.EXPANDABLE_BLOCKQUOTE, 0, utf16_len(shown))
    moved = [
        MessageEntity(
            e.type,
            e.offset + shift,
            e.length,
            url=e.url,
            user=e.user,
            language=e.language,
            custom_emoji_id=e.custom_emoji_id,
        )
        for e in entities
    ]
    return head + body, [quote, *moved]


def _cut(text: str, limit: int) -> str:
    if utf16_len(text) <= limit:
        return text
    out = []
    used = 0
    for ch in text:
        size = 2 if ord(ch) > 0xFFFF else 1
        if used + size > limit - 1:
            break
        out.append(ch)
        used += size
    return "".join(out) + "…"


def _ptb_entity(data: dict) -> MessageEntity:
    return MessageEntity(
        data["type"],
        data["offset"],
        data["length"],
        url=data.get("url"),
        language=data.get("language"),
        custom_emoji_id=data.get("custom_emoji_id"),
    )
