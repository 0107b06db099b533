"""Chat-completion chunks (already decoded from SSE) → typed stream events.

The per-chunk path is kept lean: one JSON decode, a few dict look-ups, and consecutive
deltas of one kind from the same network read merged into a single event.
"""
from __future__ import annotations

import json
from typing import Any, Callable

from bot.gateway import failures
from bot.gateway.errors import GatewayError
from bot.gateway.events import Finish, ReasoningDelta, StreamEvent, TextDelta, ToolCall, Usage
from bot.gateway.reasoning import ThinkSplitter

try:  # faster when present; never a required dependency
    import orjson

    loads: Callable[[str | bytes], Any] = orjson.loads
    DecodeError: type[Exception] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover - depends on the environment
    loads = json.loads
    DecodeError = ValueError


def parse_usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    details = raw.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
        cached_tokens=int(cached or 0),
    )


def _reasoning_details_text(details: Any) -> str:
    if not isinstance(details, list):
        return ""
    parts = []
    for item in details:
        if isinstance(item, dict):
            text = item.get("text")
            if isinstance(text, str):
                parts.append(text)
    return "".join(parts)


class StreamParser:
    """Feed lists of SSE data strings; collect events. ``finish()`` after the last one."""

    __slots__ = ("_splitter", "_field_reasoning", "_tools", "finish_reason", "usage", "done",
                 "_secret", "_out", "error")

    def __init__(self, secret: str | None = None) -> None:
        self._splitter = ThinkSplitter()
        self._field_reasoning = False
        self._tools: dict[int, list[Any]] = {}  # index → [id, name, [argument fragments]]
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.done = False  # "[DONE]" seen
        self._secret = secret
        self._out: list[StreamEvent] = []
        self.error: GatewayError | None = None  # an error chunk, raised after earlier events

    @property
    def complete(self) -> bool:
        """The answer ended properly (a bare EOF before this means the stream was cut)."""
        return self.done or self.finish_reason is not None

    def feed(self, datas: list[str]) -> list[StreamEvent]:
        out = self._out = []
        for data in datas:
            if data == "[DONE]":
                self.done = True
                break
            try:
                chunk = loads(data)
            except DecodeError:
                continue  # a keep-alive or garbage line; the stream goes on
            if type(chunk) is not dict:
                continue
            try:
                self.chunk(chunk)
            except GatewayError as exc:
                # Deliver what came before the error in this read, then fail.
                self.error = exc
                break
        return _merged(out)

    def whole(self, body: dict[str, Any]) -> list[StreamEvent]:
        """A non-streamed completion body (``choices[].message``); errors raise at once."""
        self._out = out = []
        self.chunk(body)
        self.done = True
        return _merged(out)

    def chunk(self, chunk: dict[str, Any]) -> None:
        if "base_resp" in chunk:
            minimax = failures.base_resp_code(chunk)
            if minimax is not None:
                raise failures.from_base_resp(*minimax, secret=self._secret)
        err = chunk.get("error")
        if err:
            raise failures.from_stream_error(err, self._secret)
        choices = chunk.get("choices")
        if choices:
            for choice in choices:
                if choice.get("index", 0) != 0:  # n is always 1; ignore strays
                    continue
                delta = choice.get("delta")
                if delta is None:
                    delta = choice.get("message")  # a whole completion (non-streamed body)
                if delta:
                    self._delta(delta)
                reason = choice.get("finish_reason")
                if reason:
                    self.finish_reason = reason
        usage = chunk.get("usage")
        if usage:
            self.usage = parse_usage(usage)

    def _delta(self, delta: dict[str, Any]) -> None:
        out = self._out
        if not self._field_reasoning:
            # A reasoning field, even empty, says this gateway splits reasoning out.
            if isinstance(delta.get("reasoning_content"), str) or isinstance(delta.get("reasoning_details"), list):
                self._field_reasoning = True
                held = self._splitter.field_seen()
                if held:
                    out.append(TextDelta(held))
        if self._field_reasoning:
            reasoning = delta.get("reasoning_content")
            if not reasoning and "reasoning_details" in delta:
                reasoning = _reasoning_details_text(delta["reasoning_details"])
            if reasoning and isinstance(reasoning, str):
                out.append(ReasoningDelta(reasoning))
        content = delta.get("content")
        if content and isinstance(content, str):
            think, text = self._splitter.feed(content)
            if think:
                out.append(ReasoningDelta(think))
            if text:
                out.append(TextDelta(text))
        calls = delta.get("tool_calls")
        if calls:
            self._tool_fragments(calls)

    def _tool_fragments(self, calls: list[Any]) -> None:
        tools = self._tools
        for frag in calls:
            if not isinstance(frag, dict):
                continue
            index = frag.get("index")
            call_id = frag.get("id")
            if not isinstance(index, int):
                # Servers that omit the index send each call whole: a new id is a new call.
                known = [i for i, slot in tools.items() if slot[0] == call_id]
                index = known[0] if known else (len(tools) if call_id or not tools else max(tools))
            slot = tools.get(index)
            if slot is None:
                slot = tools[index] = ["", "", []]
            if call_id:
                slot[0] = call_id
            function = frag.get("function")
            if isinstance(function, dict):
                name = function.get("name")
                if name and not slot[1]:
                    slot[1] = name
                args = function.get("arguments")
                if args:
                    slot[2].append(args if isinstance(args, str) else json.dumps(args, ensure_ascii=False))

    def finish(self) -> list[StreamEvent]:
        """The events that close the answer: held text, tool calls, usage, Finish."""
        out: list[StreamEvent] = []
        think, text = self._splitter.finish()
        if think:
            out.append(ReasoningDelta(think))
        if text:
            out.append(TextDelta(text))
        for index in sorted(self._tools):
            call_id, name, args = self._tools[index]
            out.append(ToolCall(id=call_id or f"call_{index}", name=name, arguments="".join(args), index=index))
        if self.usage is not None:
            out.append(self.usage)
        out.append(Finish(self.finish_reason or ""))
        return out


def _merged(events: list[StreamEvent]) -> list[StreamEvent]:
    """Join consecutive text (or reasoning) deltas: fewer events for the consumer."""
    if len(events) < 2:
        return events
    merged: list[StreamEvent] = []
    run: list[str] = []
    run_kind: type | None = None
    for event in events:
        kind = type(event)
        if kind is run_kind:
            run.append(event.text)  # type: ignore[union-attr]
            continue
        if run_kind is not None:
            merged.append(run_kind(run[0] if len(run) == 1 else "".join(run)))
            run_kind = None
        if kind is TextDelta or kind is ReasoningDelta:
            run_kind, run = kind, [event.text]  # type: ignore[union-attr]
        else:
            merged.append(event)
    if run_kind is not None:
        merged.append(run_kind(run[0] if len(run) == 1 else "".join(run)))
    return merged
