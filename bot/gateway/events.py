"""Typed events a streamed completion is parsed into."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class TextDelta:
    """Visible answer text (reasoning already removed)."""

    text: str


@dataclass(slots=True)
class ReasoningDelta:
    """The model's thinking, from <think> tags, reasoning_content or reasoning_details."""

    text: str


@dataclass(slots=True)
class ToolCall:
    """One complete tool call, assembled by index from streamed fragments."""

    id: str
    name: str
    arguments: str  # JSON text as the model wrote it (may be invalid)
    index: int = 0


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0


@dataclass(slots=True)
class Finish:
    """The stream ended normally. Tool calls (if any) come before it as ``ToolCall``s."""

    reason: str  # stop, length, content_filter, tool_calls (or "" if the server sent none)


StreamEvent = TextDelta | ReasoningDelta | ToolCall | Usage | Finish


@dataclass(slots=True)
class ChatRequest:
    """One call to the model. ``messages`` are OpenAI-shaped dicts built by the core."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None  # omitted from the body when empty
    response_format: dict[str, Any] | None = None
    max_tokens: int | None = None  # None: the configured default
    extra: dict[str, Any] = field(default_factory=dict)
