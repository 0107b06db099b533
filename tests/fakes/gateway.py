"""A fake of the model gateway: a real HTTP server speaking its SSE dialect.

``POST /v1/chat/completions`` on 127.0.0.1 (port 0). Requests are validated like the real
gateway does (Bearer key, no ``tools: []``, no temperature 0, ``n`` = 1, max_tokens ≤ 16384)
and recorded. Each request consumes one scripted ``Answer`` (``gw.script(...)``); with none
queued, ``gw.default(body)`` answers (an echo with a short reasoning).

    async with FakeGateway() as gw:
        gw.script(Answer(text="hi", reasoning_style="reasoning_content"), Answer(status=429, retry_after="1"))
        ... Settings(BYTESPIKE_BASE_URL=gw.base_url, BYTESPIKE_API_KEY=gw.api_key) ...

Cheap enough for a benchmark: chunks are rendered from byte templates, answers without
delays go out in one write, and recording can be switched off (``record=False``).
Run it standalone with ``python -m tests.fakes.gateway --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

MAX_TOKENS = 16384
_dumps = json.dumps


@dataclass
class FakeToolCall:
    name: str
    arguments: str | dict[str, Any] = "{}"
    id: str | None = None

    @property
    def arguments_text(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return _dumps(self.arguments, ensure_ascii=False)


@dataclass
class Answer:
    """One scripted reply. Defaults: a streamed "ok" with inline reasoning and usage."""

    text: str = "ok"
    reasoning: str = ""
    # inline: "<think>…</think>" in content; inline_no_open: the opening tag is missing;
    # reasoning_content / reasoning_details: reasoning in its own delta field; none: plain
    # content with no sign of reasoning at all (the client holds such text back to the end).
    # With reasoning="" the inline styles still send an empty "<think></think>" (the model
    # always thinks), so text streams as it comes.
    reasoning_style: str = "inline"
    split_tags: bool = False  # force chunk boundaries inside "<think>" and "</think>"
    chunks: list[str] | None = None  # exact content pieces (overrides text/reasoning)
    chunk_size: int = 8  # characters of content per chunk
    first_token_delay: float = 0.0  # after the headers, before the first chunk
    chunk_delay: float = 0.0  # between chunks: sets the token rate
    tool_calls: list[FakeToolCall | dict[str, Any]] = field(default_factory=list)
    interleave_tool_calls: bool = False  # fragments of several calls alternate
    finish_reason: str | None = None  # default: "tool_calls" with tool calls, else "stop"
    usage: str = "final_chunk"  # final_chunk (choices: []), with_finish, none
    prompt_tokens: int | None = None  # None: estimated from the request
    completion_tokens: int | None = None  # None: estimated from the answer
    cached_tokens: int = 0
    status: int = 200  # non-200: an error response instead of a stream
    error_body: dict[str, Any] | str | None = None
    retry_after: str | None = None  # Retry-After header value (seconds or an HTTP date)
    base_resp: tuple[int, str] | None = None  # MiniMax error with HTTP 200
    base_resp_after: int | None = None  # None: as a JSON body; N: as a chunk after N chunks
    cut_after: int | None = None  # drop the connection after N chunks
    json_body: bool = False  # answer with a whole chat.completion JSON instead of SSE
    send_done: bool = True  # end with "data: [DONE]"
    wait_for: asyncio.Event | None = None  # block until set (after pause_after chunks)
    pause_after: int = 0
    # Chunks of the wrong shape, as some gateways send: payloads inserted before the event
    # at that position (a str is sent verbatim as the data line, anything else as JSON).
    insert: dict[int, list[Any]] = field(default_factory=dict)
    raw_events: list[Any] | None = None  # the whole stream is these payloads (then [DONE])
    refusal: str | None = None  # an OpenAI-style refusal in delta.refusal instead of content
    hang: bool = False  # accept the request, then send nothing at all (not even headers)

    @property
    def finish(self) -> str:
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"


@dataclass
class RecordedRequest:
    path: str
    headers: CIMultiDict[str]
    body: Any  # the decoded JSON (None if it was not JSON)
    peer: Any = None  # the client's (host, port): the same for requests on one connection

    @property
    def authorization(self) -> str | None:
        return self.headers.get("Authorization")

    @property
    def json(self) -> Any:
        return self.body


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def echo_answer(body: dict[str, Any]) -> Answer:
    return Answer(text=f"echo: {last_user_text(body)}", reasoning="The user wrote something; echo it.")


def estimate_tokens(text: str) -> int:
    return max(1, len(text) // 3)


def _pieces(text: str, size: int, cuts: tuple[int, ...] = ()) -> list[str]:
    """``text`` in pieces of ``size`` characters, also cut at the given offsets."""
    size = max(1, size)
    points = set(range(size, len(text), size))
    points.update(c for c in cuts if 0 < c < len(text))
    out, start = [], 0
    for point in sorted(points):
        out.append(text[start:point])
        start = point
    out.append(text[start:])
    return [p for p in out if p]


class _Chunks:
    """Renders chunk events as bytes. Templates keep this cheap under load."""

    def __init__(self, model: str) -> None:
        self.id = f"chatcmpl-fake{time.monotonic_ns()}"
        head = (
            f'data: {{"id":"{self.id}","object":"chat.completion.chunk",'
            f'"created":{int(time.time())},"model":{_dumps(model)},'
        )
        self.head = head
        self.content_pre = (head + '"choices":[{"index":0,"delta":{"content":').encode()
        self.content_first_pre = (head + '"choices":[{"index":0,"delta":{"role":"assistant","content":').encode()
        self.rc_pre = (head + '"choices":[{"index":0,"delta":{"reasoning_content":').encode()
        self.post = b'},"finish_reason":null}]}\n\n'

    def content(self, piece: str, first: bool) -> bytes:
        pre = self.content_first_pre if first else self.content_pre
        return pre + _dumps(piece, ensure_ascii=False).encode() + self.post

    def reasoning_content(self, piece: str) -> bytes:
        return self.rc_pre + _dumps(piece, ensure_ascii=False).encode() + self.post

    def raw(self, payload: dict[str, Any]) -> bytes:
        return (self.head + _dumps(payload, ensure_ascii=False)[1:] + "\n\n").encode()

    @staticmethod
    def data(payload: Any) -> bytes:
        """One event whose data is ``payload``: a str verbatim, anything else as JSON."""
        text = payload if isinstance(payload, str) else _dumps(payload, ensure_ascii=False)
        return f"data: {text}\n\n".encode()

    def delta(self, delta: dict[str, Any], finish: str | None = None, usage: dict | None = None) -> bytes:
        payload: dict[str, Any] = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        if usage is not None:
            payload["usage"] = usage
        return self.raw(payload)


class FakeGateway:
    def __init__(
        self,
        *,
        api_key: str = "test-key",
        model: str = "minimax-m2.7",
        record: bool = True,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.api_key = api_key
        self.ssl_context = ssl_context
        self.model = model
        self.record = record
        self.requests: list[RecordedRequest] = []
        self.answers: list[Answer] = []
        self.default: Callable[[dict[str, Any]], Answer] = echo_answer
        self.active = 0  # answers being streamed right now
        self.served = 0
        self._gate: asyncio.Event | None = None
        self._arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self.base_url = ""
        # Optional timing hook (benchmarks): called as ``on_timing(body, event, time.monotonic())``
        # right after a streamed answer's first visible text was written ("visible": the first
        # content delta past the reasoning) and after its last event ("done").
        self.on_timing: Callable[[Any, str, float], None] | None = None

    # --- lifecycle --------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeGateway:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, backlog=4096, ssl_context=self.ssl_context)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        scheme = "https" if self.ssl_context else "http"
        self.base_url = f"{scheme}://{bound_host}:{bound_port}"
        return self

    async def stop(self) -> None:
        if self._gate is not None:
            self._gate.set()
        for task in list(self._handlers):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeGateway:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- scripting --------------------------------------------------------------------

    def script(self, *answers: Answer | str) -> None:
        """Queue answers, consumed one per request (a string is ``Answer(text=...)``)."""
        self.answers.extend(Answer(text=a) if isinstance(a, str) else a for a in answers)

    def hold(self) -> asyncio.Event:
        """Make answers wait (after their ``pause_after`` chunks) until ``release()``."""
        if self._gate is None or self._gate.is_set():
            self._gate = asyncio.Event()
        return self._gate

    def release(self) -> None:
        if self._gate is not None:
            self._gate.set()
            self._gate = None

    @property
    def last(self) -> RecordedRequest:
        return self.requests[-1]

    async def wait_for_requests(self, count: int, timeout: float = 5.0) -> None:
        """Wait until ``count`` requests have arrived in total."""
        async with asyncio.timeout(timeout):
            while self.served < count:
                self._arrived.clear()
                await self._arrived.wait()

    # --- the endpoint -----------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            return await self._answer(request)
        finally:
            if task is not None:
                self._handlers.discard(task)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if self.record:
            self.requests.append(
                RecordedRequest(
                    request.path,
                    CIMultiDict(request.headers),
                    body,
                    request.transport.get_extra_info("peername") if request.transport else None,
                )
            )
        self.served += 1
        self._arrived.set()

        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "invalid api key", "authentication_error")
        problem = _validate(body)
        if problem:
            return _error(400, problem, "invalid_request_error")

        answer = self.answers.pop(0) if self.answers else self.default(body)
        if answer.hang:
            await asyncio.Event().wait()  # until the client gives up or the server stops
        if answer.status != 200:
            return self._status_error(answer)
        if answer.base_resp is not None and answer.base_resp_after is None:
            code, message = answer.base_resp
            return web.json_response(
                {"id": "", "choices": None, "base_resp": {"status_code": code, "status_msg": message}}
            )
        if answer.json_body or body.get("stream") is not True:
            if answer.first_token_delay:
                await asyncio.sleep(answer.first_token_delay)
            return web.json_response(_completion(answer, body, self.model), dumps=_dump_unicode)
        return await self._stream(request, answer, body)

    def _status_error(self, answer: Answer) -> web.Response:
        headers = {"Retry-After": answer.retry_after} if answer.retry_after is not None else None
        if isinstance(answer.error_body, str):
            return web.Response(status=answer.status, text=answer.error_body, headers=headers)
        payload = answer.error_body or {
            "error": {"message": f"fake error {answer.status}", "type": "fake_error", "code": answer.status}
        }
        return web.json_response(payload, status=answer.status, headers=headers)

    async def _stream(self, request: web.Request, answer: Answer, body: dict[str, Any]) -> web.StreamResponse:
        events = _render(answer, body, _Chunks(self.model))
        visible = _first_visible(answer) if self.on_timing is not None else None
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        self.active += 1
        try:
            if answer.first_token_delay:
                await asyncio.sleep(answer.first_token_delay)
            stop_at = answer.cut_after if answer.cut_after is not None else len(events)
            pause_at = answer.pause_after
            must_wait = answer.wait_for is not None or self._gate is not None
            if not answer.chunk_delay and not must_wait and stop_at >= len(events):
                await response.write(b"".join(events))  # one write: cheapest under load
                if visible is not None:
                    self._timing(body, "visible")
            else:
                for n, event in enumerate(events[:stop_at]):
                    if n == pause_at:
                        await self._wait(answer)
                    if n and answer.chunk_delay:
                        await asyncio.sleep(answer.chunk_delay)
                    await response.write(event)
                    if n == visible:
                        self._timing(body, "visible")
                if pause_at >= min(stop_at, len(events)):
                    await self._wait(answer)
            if stop_at < len(events):
                # Drop the connection mid-body, like a proxy timing out or a crash.
                if request.transport is not None:
                    request.transport.abort()
                return response
            await response.write_eof()
            if self.on_timing is not None:
                self._timing(body, "done")
            return response
        finally:
            self.active -= 1

    def _timing(self, body: Any, event: str) -> None:
        if self.on_timing is not None:
            self.on_timing(body, event, time.monotonic())

    async def _wait(self, answer: Answer) -> None:
        if answer.wait_for is not None:
            await answer.wait_for.wait()
        gate = self._gate
        if gate is not None:
            await gate.wait()


def _dump_unicode(obj: Any) -> str:
    return _dumps(obj, ensure_ascii=False)


def _error(status: int, message: str, kind: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "code": status}}, status=status)


def _validate(body: Any) -> str | None:
    """The checks the real gateway makes before calling the model."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("model"), str):
        return "model is required"
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return "messages must be a non-empty list"
    if "tools" in body and (not isinstance(body["tools"], list) or not body["tools"]):
        return "tools must be a non-empty list when present"
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and "strict" in (tool.get("function") or {}):
            return "strict is not supported in function definitions"
    temperature = body.get("temperature")
    if temperature is not None and not (isinstance(temperature, (int, float)) and 0 < temperature <= 2):
        return "temperature must be in (0, 2]"
    if body.get("n", 1) != 1:
        return "n must be 1"
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and not (isinstance(max_tokens, int) and 1 <= max_tokens <= MAX_TOKENS):
        return f"max_tokens must be between 1 and {MAX_TOKENS}"
    return None


def _content_pieces(answer: Answer) -> list[str]:
    if answer.chunks is not None:
        return list(answer.chunks)
    if answer.reasoning_style == "inline" and answer.reasoning:
        full = f"<think>{answer.reasoning}</think>\n\n{answer.text}"
        close = 7 + len(answer.reasoning)
        cuts = (4, close + 4) if answer.split_tags else ()
        return _pieces(full, answer.chunk_size, cuts)
    if answer.reasoning_style == "inline_no_open" and answer.reasoning:
        full = f"{answer.reasoning}</think>\n\n{answer.text}"
        cuts = (len(answer.reasoning) + 4,) if answer.split_tags else ()
        return _pieces(full, answer.chunk_size, cuts)
    pieces = _pieces(answer.text, answer.chunk_size)
    # The model always thinks: with no reasoning scripted, an empty think block rides on
    # the first chunk (chunk counts stay those of the text). "none" sends plain content.
    if pieces and answer.reasoning_style == "inline":
        pieces[0] = "<think></think>\n\n" + pieces[0]
    elif pieces and answer.reasoning_style == "inline_no_open":
        pieces[0] = "</think>\n\n" + pieces[0]
    return pieces


def _first_visible(answer: Answer) -> int | None:
    """Index of the event that carries an answer's first visible text (past any reasoning),
    or None when there is none or the stream is scripted event by event."""
    if answer.raw_events is not None or answer.refusal is not None or answer.insert:
        return None
    hidden = 0
    if answer.chunks is None and answer.reasoning_style == "inline":
        hidden = len(f"<think>{answer.reasoning}</think>\n\n")
    elif answer.chunks is None and answer.reasoning_style == "inline_no_open":
        hidden = len(f"{answer.reasoning}</think>\n\n") if answer.reasoning else len("</think>\n\n")
    before = 0  # reasoning events sent in their own field, ahead of the content
    if (
        answer.reasoning
        and answer.chunks is None
        and answer.reasoning_style in ("reasoning_content", "reasoning_details")
    ):
        before = len(_pieces(answer.reasoning, answer.chunk_size))
    seen = 0
    for i, piece in enumerate(_content_pieces(answer)):
        seen += len(piece)
        if seen > hidden and piece[max(0, len(piece) - (seen - hidden)) :].strip():
            return before + i
    return None


def _usage(answer: Answer, body: dict[str, Any]) -> dict[str, Any]:
    prompt = answer.prompt_tokens
    if prompt is None:
        prompt = estimate_tokens(_dumps(body.get("messages") or [], ensure_ascii=False))
    completion = answer.completion_tokens
    if completion is None:
        completion = estimate_tokens(answer.reasoning + answer.text)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": answer.cached_tokens},
    }


def _tool_calls(answer: Answer) -> list[FakeToolCall]:
    calls = []
    for i, call in enumerate(answer.tool_calls):
        if isinstance(call, dict):
            call = FakeToolCall(call["name"], call.get("arguments", "{}"), call.get("id"))
        calls.append(FakeToolCall(call.name, call.arguments, call.id or f"call_fake_{i}"))
    return calls


def _render(answer: Answer, body: dict[str, Any], chunks: _Chunks) -> list[bytes]:
    """Every SSE event of a streamed answer, in order."""
    if answer.raw_events is not None:
        events = [chunks.data(payload) for payload in answer.raw_events]
        return events + [b"data: [DONE]\n\n"] if answer.send_done else events
    events = _render_answer(answer, body, chunks)
    for position in sorted(answer.insert, reverse=True):
        events[position:position] = [chunks.data(payload) for payload in answer.insert[position]]
    return events


def _render_answer(answer: Answer, body: dict[str, Any], chunks: _Chunks) -> list[bytes]:
    events: list[bytes] = []
    if answer.refusal is not None:
        # As OpenAI streams it: a first delta with role and an empty refusal, then pieces.
        events.append(chunks.delta({"role": "assistant", "content": None, "refusal": ""}))
        events += [chunks.delta({"refusal": piece}) for piece in _pieces(answer.refusal, answer.chunk_size)]
        usage = _usage(answer, body) if answer.usage != "none" else None
        events.append(chunks.delta({}, answer.finish, usage))
        if answer.send_done:
            events.append(b"data: [DONE]\n\n")
        return events
    first = True
    if answer.reasoning and answer.chunks is None:
        if answer.reasoning_style == "reasoning_content":
            for piece in _pieces(answer.reasoning, answer.chunk_size):
                events.append(chunks.reasoning_content(piece))
        elif answer.reasoning_style == "reasoning_details":
            for piece in _pieces(answer.reasoning, answer.chunk_size):
                events.append(
                    chunks.delta(
                        {
                            "reasoning_details": [
                                {
                                    "type": "reasoning.text",
                                    "id": "reasoning-text-1",
                                    "format": "MiniMax-response-v1",
                                    "index": 0,
                                    "text": piece,
                                }
                            ]
                        }
                    )
                )
    for piece in _content_pieces(answer):
        if first and not answer.reasoning and answer.chunks is None:
            # An empty reasoning field still tells the client that reasoning is split out.
            if answer.reasoning_style == "reasoning_content":
                events.append(chunks.delta({"role": "assistant", "content": piece, "reasoning_content": ""}))
                first = False
                continue
            if answer.reasoning_style == "reasoning_details":
                events.append(chunks.delta({"role": "assistant", "content": piece, "reasoning_details": []}))
                first = False
                continue
        events.append(chunks.content(piece, first))
        first = False
    calls = _tool_calls(answer)
    if calls:
        streams = []
        for i, call in enumerate(calls):
            frags = [{"index": i, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}]
            frags += [
                {"index": i, "function": {"arguments": piece}}
                for piece in _pieces(call.arguments_text, answer.chunk_size)
            ]
            streams.append(frags)
        if answer.interleave_tool_calls:
            order = [frag for group in _zip_longest(streams) for frag in group]
        else:
            order = [frag for frags in streams for frag in frags]
        for frag in order:
            events.append(chunks.delta({"tool_calls": [frag]}))
    usage = _usage(answer, body) if answer.usage != "none" else None
    events.append(chunks.delta({}, answer.finish, usage if answer.usage == "with_finish" else None))
    if answer.usage == "final_chunk":
        events.append(chunks.raw({"choices": [], "usage": usage}))
    if answer.base_resp is not None and answer.base_resp_after is not None:
        code, message = answer.base_resp
        error = chunks.raw({"choices": [], "base_resp": {"status_code": code, "status_msg": message}})
        return events[: answer.base_resp_after] + [error]
    if answer.send_done:
        events.append(b"data: [DONE]\n\n")
    return events


def _zip_longest(streams: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    length = max(len(s) for s in streams)
    return [[s[i] for s in streams if i < len(s)] for i in range(length)]


def _completion(answer: Answer, body: dict[str, Any], model: str) -> dict[str, Any]:
    """A whole (non-streamed) chat.completion."""
    message: dict[str, Any] = {"role": "assistant", "content": answer.text}
    if not answer.reasoning and answer.text:
        if answer.reasoning_style == "inline":
            message["content"] = f"<think></think>\n\n{answer.text}"
        elif answer.reasoning_style == "reasoning_content":
            message["reasoning_content"] = ""
    if answer.reasoning:
        if answer.reasoning_style == "inline":
            message["content"] = f"<think>{answer.reasoning}</think>\n\n{answer.text}"
        elif answer.reasoning_style == "inline_no_open":
            message["content"] = f"{answer.reasoning}</think>\n\n{answer.text}"
        elif answer.reasoning_style == "reasoning_content":
            message["reasoning_content"] = answer.reasoning
        elif answer.reasoning_style == "reasoning_details":
            message["reasoning_details"] = [{"type": "reasoning.text", "text": answer.reasoning}]
    calls = _tool_calls(answer)
    if calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments_text}} for c in calls
        ]
    payload: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": answer.finish}],
    }
    if answer.usage != "none":
        payload["usage"] = _usage(answer, body)
    return payload


# --- standalone, for the benchmark or trying a client by hand ----------------------------


def _main() -> None:
    parser = argparse.ArgumentParser(description="Serve the fake model gateway.")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--api-key", default="test-key")
    parser.add_argument("--chars", type=int, default=0, help="answer length (0: echo)")
    parser.add_argument("--chunk-size", type=int, default=8)
    parser.add_argument("--first-token-delay", type=float, default=0.0)
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    args = parser.parse_args()

    def answer(body: dict[str, Any]) -> Answer:
        text = (
            ("lorem ipsum " * (args.chars // 12 + 1))[: args.chars] if args.chars else f"echo: {last_user_text(body)}"
        )
        return Answer(
            text=text,
            reasoning="Thinking briefly.",
            chunk_size=args.chunk_size,
            first_token_delay=args.first_token_delay,
            chunk_delay=args.chunk_delay,
        )

    async def serve() -> None:
        gw = FakeGateway(api_key=args.api_key, record=False)
        gw.default = answer
        await gw.start(port=args.port)
        print(f"fake gateway on {gw.base_url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await gw.stop()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    _main()
