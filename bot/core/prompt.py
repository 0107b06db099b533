"""Prompt assembly within the context budget, shaped for the gateway's prefix cache.

The cache is prefix-based, so: the system prompt (and the conversation's style) come first
and never carry volatile data; history is append-only; when it outgrows the budget, the
oldest turns are dropped in one large step (down to half the budget) and the new start is
remembered, so the following turns share a prefix again instead of shifting by one turn
each time.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from bot.core.tokens import IMAGE_TOKENS, MESSAGE_OVERHEAD, estimate_tokens
from bot.store.repo import StoredMessage

TRIM_LOW_WATER = 0.5  # after a trim the history uses at most this share of the budget


@dataclass(slots=True)
class Prompt:
    messages: list[dict[str, Any]]
    estimated_tokens: int  # corrected by the conversation's usage ratio
    new_history_start: int | None = None  # set when this prompt trimmed old history
    images_dropped: int = 0


def _image_block(mime: str, data: bytes) -> dict[str, Any]:
    url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return {"type": "image_url", "image_url": {"url": url}}


def _ordered(history: list[StoredMessage]) -> list[StoredMessage]:
    """Put each turn's tool steps just before that turn's answer.

    The answer's place is reserved when its turn starts (right after the question), while
    the tool calls and results of the turn are stored later; the model must see question,
    calls, results, answer — and messages sent mid-answer after all of them.
    """
    answer_at: dict[int, int] = {}
    for i, msg in enumerate(history):
        if msg.turn_id is not None and msg.role == "assistant" and not any(p.kind == "tool_call" for p in msg.parts):
            answer_at[msg.turn_id] = i
    if not answer_at:
        return history

    def key(item: tuple[int, StoredMessage]) -> tuple[int, int, int]:
        i, msg = item
        at = answer_at.get(msg.turn_id) if msg.turn_id is not None else None
        if at is None:
            return (i, 1, i)
        return (at, 1 if at == i else 0, i)

    return [msg for _, msg in sorted(enumerate(history), key=key)]


def _user_text(msg: StoredMessage, group: bool) -> str:
    chunks = []
    for part in msg.parts:
        if part.kind == "text" and part.text:
            chunks.append(part.text)
        elif part.kind == "document" and part.text:
            name = (part.data or {}).get("filename", "document")
            chunks.append(f"<document name={json.dumps(name, ensure_ascii=False)}>\n{part.text}\n</document>")
        elif part.kind == "note" and part.text:
            chunks.append(f"[{part.text}]")
    text = "\n\n".join(chunks)
    if group and msg.author_name:
        text = f"[{msg.author_name}] {text}"
    return text


def _estimate(msg: StoredMessage) -> int:
    return (
        MESSAGE_OVERHEAD
        + sum(estimate_tokens(p.text or "") for p in msg.parts)
        + sum(IMAGE_TOKENS for p in msg.parts if p.kind == "image")
    )


def build_prompt(
    system: str,
    history: list[StoredMessage],
    images: dict[int, bytes],
    *,
    budget_tokens: int,
    max_images: int,
    token_ratio: float = 1.0,
    group: bool = False,
    vision: bool = True,
) -> Prompt:
    """``history`` runs from the conversation's current start; ``images`` holds the data of
    the newest ``max_images`` image attachments (see ``images_wanted``)."""
    ratio = max(token_ratio, 1.0)  # usage may correct upward, never below the estimate
    system_cost = estimate_tokens(system) + MESSAGE_OVERHEAD
    costs = [_estimate(m) for m in history]
    total = system_cost + sum(costs)
    new_start = None
    start = 0
    if total * ratio > budget_tokens and history:
        target = budget_tokens * TRIM_LOW_WATER / ratio
        while start < len(history) - 1 and total > target:
            total -= costs[start]
            start += 1
        # Never open on an answer or a tool result without the question that led to it.
        while start < len(history) - 1 and history[start].role != "user":
            total -= costs[start]
            start += 1
        new_start = history[start].seq

    kept = _ordered(history[start:])
    last_user = max((i for i, m in enumerate(kept) if m.role == "user"), default=-1)
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    dropped = 0
    for i, msg in enumerate(kept):
        if msg.role == "user":
            text = _user_text(msg, group)
            blocks: list[dict[str, Any]] = []
            for part in msg.parts:
                if part.kind != "image":
                    continue
                if vision and part.attachment_id in images:
                    blocks.append(_image_block(part.mime or "image/jpeg", images[part.attachment_id]))
                else:
                    dropped += 1
                    text += (
                        "\n[an image was attached here earlier; it is no longer shown]"
                        if vision
                        else "\n[an image was attached, but image input is turned off]"
                    )
            if blocks:
                content: str | list[dict[str, Any]] = [{"type": "text", "text": text or "(image)"}, *blocks]
            else:
                content = text
            # Consecutive user messages (several people, or messages queued mid-answer)
            # become one message, so roles alternate as the model expects.
            if messages and messages[-1]["role"] == "user":
                messages[-1]["content"] = _merge(messages[-1]["content"], content)
            else:
                messages.append({"role": "user", "content": content})
        elif msg.role == "assistant":
            text = msg.text
            calls = [p.data for p in msg.parts if p.kind == "tool_call" and p.data]
            if calls and i > last_user:
                # In a live tool-call chain MiniMax wants its message back unchanged,
                # thinking included.
                reasoning = "".join(p.text or "" for p in msg.parts if p.kind == "reasoning")
                if reasoning:
                    text = f"<think>{reasoning}</think>\n\n{text}"
            entry: dict[str, Any] = {"role": "assistant", "content": text}
            if calls:
                entry["tool_calls"] = calls
            if not text and not calls:
                continue
            messages.append(entry)
        elif msg.role == "tool":
            for part in msg.parts:
                if part.kind == "tool_result":
                    messages.append(
                        {"role": "tool", "tool_call_id": (part.data or {}).get("id", ""), "content": part.text or ""}
                    )
    return Prompt(messages, int(total * ratio), new_start, dropped)


def with_additions(messages: list[dict[str, Any]], examples: list[dict[str, Any]], newest: str) -> list[dict[str, Any]]:
    """``messages`` with few-shot ``examples`` right after the system prompt (they are part of
    the stable prefix) and ``newest`` appended to the last user message (volatile: it never
    enters the prefix of a later turn)."""
    at = 1 if messages and messages[0]["role"] == "system" else 0
    out = [*messages[:at], *examples, *messages[at:]]
    if newest:
        last = max((i for i, m in enumerate(out) if m["role"] == "user" and i >= at + len(examples)), default=None)
        if last is not None:
            out[last] = {**out[last], "content": _merge(out[last]["content"], newest)}
    return out


def cost_of(messages: list[dict[str, Any]]) -> int:
    """The estimated tokens of extra messages (kept out of the history's budget)."""
    return sum(estimate_tokens(json.dumps(m, ensure_ascii=False)) + MESSAGE_OVERHEAD for m in messages)


def _merge(first: str | list[dict[str, Any]], second: str | list[dict[str, Any]]) -> list[dict[str, Any]] | str:
    if isinstance(first, str) and isinstance(second, str):
        return f"{first}\n\n{second}"

    def as_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"type": "text", "text": content}] if isinstance(content, str) else content

    return as_blocks(first) + as_blocks(second)


def images_wanted(history: list[StoredMessage], max_images: int) -> list[int]:
    """Attachment ids of the newest ``max_images`` images in the user's messages."""
    wanted: list[int] = []
    for msg in reversed(history):
        if msg.role != "user":
            continue
        for part in reversed(msg.parts):
            if part.kind == "image" and part.attachment_id is not None and len(wanted) < max_images:
                wanted.append(part.attachment_id)
    return wanted
