"""Chat-completion chunks (already decoded from SSE) → typed stream events.

The per-chunk path is kept lean: one JSON decode, a few dict look-ups, and consecutive
deltas of one kind from the same network read merged into a single event.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

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


_SAMPLE_CHARS = 160  # of the first bad chunk, in the once-per-stream warning


def _count(value: Any) -> int | None:
    """A token count: a non-negative int (or a whole float); None when it is not one."""
    if type(value) is int:
        return value if value >= 0 else None
    if value is None:
        return 0
    if type(value) is float and value.is_integer() and value >= 0:
        return int(value)
    return None


def parse_usage(raw: Any) -> Usage | None:
    """``usage`` of a chunk or body; None if it has the wrong shape."""
    if not isinstance(raw, dict):
        return None
    details = raw.get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else 0
    prompt = _count(raw.get("prompt_tokens"))
    completion = _count(raw.get("completion_tokens"))
    if prompt is None or completion is None or cached is None:
        return None
    return Usage(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached)


class StreamParser:
    """Feed lists of SSE data strings; collect events. ``finish()`` after the last one.

    A chunk of the wrong shape never ends the answer: the parts that can't be read are
    skipped, the chunk is counted in ``bad``, and ``report`` logs the stream's count once.
    Chunks that had the shape of a completion chunk are counted in ``usable``; a stream
    without any is an unreadable answer (``check_usable``), not an empty one.
    """

    __slots__ = (
        "_splitter",
        "_field_reasoning",
        "_tools",
        "finish_reason",
        "usage",
        "done",
        "_secret",
        "_out",
        "error",
        "usable",
        "bad",
        "_sample",
        "_odd",
        "_applied",
    )

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
        self.usable = 0  # chunks with the shape of a completion chunk
        self.bad = 0  # chunks skipped whole or in part
        self._sample = ""  # the first bad chunk, for the log
        self._odd = False  # the chunk being read had a part of the wrong shape
        self._applied = False  # ... and a part that was used (text, tool call, finish, usage)

    @property
    def complete(self) -> bool:
        """The answer ended properly (a bare EOF before this means the stream was cut)."""
        return self.done or self.finish_reason is not None

    @property
    def started(self) -> bool:
        """The gateway has begun answering: a usable chunk, an error, or the end marker."""
        return self.usable > 0 or self.error is not None or self.done

    def feed(self, datas: list[str]) -> list[StreamEvent]:
        out = self._out = []
        for data in datas:
            if data == "[DONE]":
                self.done = True
                break
            try:
                chunk = loads(data)
            except DecodeError:
                self._bad(data)  # garbage (or a non-JSON keep-alive); the stream goes on
                continue
            if type(chunk) is not dict:
                self._bad(data)
                continue
            self._odd = self._applied = False
            try:
                recognised = self.chunk(chunk)
            except GatewayError as exc:
                # Deliver what came before the error in this read, then fail.
                self.error = exc
                break
            if not self._odd:
                if recognised:
                    self.usable += 1
                else:
                    self._bad(data)
            else:
                # Odd parts were skipped; the chunk still counts if the rest was used.
                if recognised and self._applied:
                    self.usable += 1
                self._bad(data)
        return _merged(out)

    def _bad(self, data: str) -> None:
        if not self.bad:
            self._sample = data[:_SAMPLE_CHARS]
        self.bad += 1

    def report(self, log: logging.Logger, url: str) -> None:
        """Log the stream's bad chunks, once: their count and the first one, scrubbed."""
        if self.bad:
            log.warning(
                "gateway %s: skipped %d unreadable chunk(s) in one answer (%d usable); first: %r",
                url,
                self.bad,
                self.usable,
                failures.scrub(self._sample, self._secret),
            )

    def check_usable(self, url: str) -> None:
        """A stream that ended without one usable chunk is an unreadable answer."""
        if self.usable == 0 and self.error is None:
            raise failures.unreadable_stream(url, self.bad)

    def whole(self, body: dict[str, Any]) -> list[StreamEvent]:
        """A non-streamed completion body (``choices[].message``); errors raise at once."""
        out = self._out = []
        self._odd = self._applied = False
        if self.chunk(body) and (self._applied or not self._odd):
            self.usable += 1
        if self._odd:
            self._bad(json.dumps(body, ensure_ascii=False)[:_SAMPLE_CHARS])
        self.done = True
        return _merged(out)

    def chunk(self, chunk: dict[str, Any]) -> bool:
        """Apply one decoded chunk. Returns whether it had the shape of a completion chunk;
        parts of the wrong shape are skipped and set ``_odd``."""
        if "base_resp" in chunk:
            minimax = failures.base_resp_code(chunk)
            if minimax is not None:
                raise failures.from_base_resp(*minimax, secret=self._secret)
        err = chunk.get("error")
        if err:
            raise failures.from_stream_error(err, self._secret)
        recognised = False
        choices = chunk.get("choices")
        if type(choices) is list:
            recognised = True
            for choice in choices:
                if type(choice) is dict:
                    self._choice(choice)
                else:
                    self._odd = True
        elif choices is not None:
            self._odd = True
        usage = chunk.get("usage")
        if usage:
            parsed = parse_usage(usage)
            if parsed is None:
                self._odd = True
            else:
                self.usage = parsed
                self._applied = recognised = True
        return recognised

    def _choice(self, choice: dict[str, Any]) -> None:
        index = choice.get("index")
        if index:  # n is always 1; ignore strays
            if type(index) is not int:
                self._odd = True
            return
        delta = choice.get("delta")
        if delta is None:
            delta = choice.get("message")  # a whole completion (non-streamed body)
        if type(delta) is dict:
            if delta:
                self._delta(delta)
        elif delta is not None:
            self._odd = True
        reason = choice.get("finish_reason")
        if reason:
            if type(reason) is str:
                self.finish_reason = reason
                self._applied = True
            else:
                self._odd = True

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
                reasoning = self._reasoning_details_text(delta["reasoning_details"])
            if reasoning:
                if type(reasoning) is str:
                    out.append(ReasoningDelta(reasoning))
                    self._applied = True
                else:
                    self._odd = True
        elif delta.get("reasoning_content") or delta.get("reasoning_details"):
            self._odd = True  # present but neither a string nor a list
        content = delta.get("content")
        if content:
            if type(content) is str:
                self._applied = True
                think, text = self._splitter.feed(content)
                if think:
                    out.append(ReasoningDelta(think))
                if text:
                    out.append(TextDelta(text))
            else:
                self._odd = True
        refusal = delta.get("refusal")
        if refusal:
            # OpenAI-style gateways put a refused request's explanation here instead of
            # content: it is the answer the user should see.
            if type(refusal) is str:
                out.append(TextDelta(refusal))
                self._applied = True
            else:
                self._odd = True
        calls = delta.get("tool_calls")
        if calls:
            if type(calls) is list:
                self._tool_fragments(calls)
            else:
                self._odd = True

    def _reasoning_details_text(self, details: Any) -> str:
        if type(details) is not list:
            self._odd = True
            return ""
        parts = []
        for item in details:
            text = item.get("text") if type(item) is dict else None
            if type(text) is str:
                parts.append(text)
            elif text is not None or type(item) is not dict:
                self._odd = True
        return "".join(parts)

    def _tool_fragments(self, calls: list[Any]) -> None:
        tools = self._tools
        for frag in calls:
            if type(frag) is not dict:
                self._odd = True
                continue
            index = frag.get("index")
            call_id = frag.get("id")
            function = frag.get("function")
            if (
                (call_id is not None and type(call_id) is not str)
                or (index is not None and type(index) is not int)
                or (function is not None and type(function) is not dict)
            ):
                self._odd = True
                continue
            name = function.get("name") if function else None
            args = function.get("arguments") if function else None
            if (name is not None and type(name) is not str) or (
                args is not None and not isinstance(args, (str, dict, list))
            ):
                self._odd = True
                continue
            if index is None:
                # Servers that omit the index send each call whole: a new id is a new call.
                known = [i for i, slot in tools.items() if slot[0] == call_id]
                index = known[0] if known else (len(tools) if call_id or not tools else max(tools))
            slot = tools.get(index)
            if slot is None:
                slot = tools[index] = ["", "", []]
            if call_id:
                slot[0] = call_id
            if name and not slot[1]:
                slot[1] = name
            if args:
                slot[2].append(args if type(args) is str else json.dumps(args, ensure_ascii=False))
            self._applied = True

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
