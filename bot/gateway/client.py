"""The gateway client: one pooled ``httpx.AsyncClient``, streamed chat completions.

``stream()`` yields typed events (``bot.gateway.events``). Failures become
``GatewayError``s (``bot.gateway.failures`` words them). Retries — 429 after
``Retry-After``, 5xx, MiniMax transient codes, connect errors and timeouts, with exponential
backoff and jitter — happen only before the first event was yielded: once the caller has
something, a broken stream raises ``StreamInterrupted`` and the caller keeps what it got.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot.config import MAX_TOKENS_CAP, Settings
from bot.gateway import failures
from bot.gateway.capabilities import ModelCapabilities
from bot.gateway.errors import GatewayError, StreamInterrupted
from bot.gateway.events import (
    ChatRequest,
    Finish,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCall,
    Usage,
)
from bot.gateway.parser import StreamParser
from bot.gateway.sse import SSEBatcher
from bot.gateway.transport import AsyncioTransport

log = logging.getLogger("bot.gateway")

# Keys the caller's ``extra`` may not override: the client owns the call's shape.
_OWNED_KEYS = frozenset({"model", "messages", "stream", "stream_options", "n", "max_tokens"})


@dataclass(slots=True)
class Completion:
    """A whole answer, collected from the stream."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str = ""
    usage: Usage | None = None


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read the few bytes after ``[DONE]`` so the connection goes back to the pool
    (closing a response early closes its connection)."""
    try:
        async with asyncio.timeout(1.0):
            async for _ in chunks:
                pass
    except (httpx.HTTPError, TimeoutError):
        pass


def _body(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body's chunks as the transport delivers them. Without a content encoding that is
    ``response.stream`` itself: ``aiter_bytes`` would add two async generators per chunk
    (byte counting, an identity decoder, re-chunking) for nothing."""
    if response.headers.get("content-encoding", "identity").strip().lower() in ("", "identity"):
        return response.stream.__aiter__()  # type: ignore[union-attr]
    return response.aiter_bytes()


async def _until_started(
    chunks: AsyncIterator[bytes], batcher: SSEBatcher, parser: StreamParser
) -> tuple[list[StreamEvent], bool]:
    """Read until the gateway has begun answering; returns its first events, and whether
    the body already ended. Stopping an ``async for`` keeps the iterator open for more."""
    async for chunk in chunks:
        datas = batcher.feed(chunk)
        if datas:
            events = parser.feed(datas)
            if parser.started:
                return events, False
    return parser.feed(batcher.close()), True


class GatewayClient:
    def __init__(
        self,
        settings: Settings,
        *,
        max_connections: int = 1000,
        max_keepalive_connections: int = 64,
        transport: httpx.AsyncBaseTransport | None = None,
        fast_transport: bool = True,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.settings = settings
        self.capabilities = ModelCapabilities.from_settings(settings)
        self.url = f"{settings.base_url}/v1/chat/completions"
        self._secret = settings.api_key.get_secret_value() if settings.api_key else None
        headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        if self._secret:
            headers["Authorization"] = f"Bearer {self._secret}"
        # Read timeout is per read (between chunks), not for the whole answer, so long
        # answers stream as long as they keep coming. The pool wait is generous because
        # a burst of conversations may queue for a connection.
        timeout = httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.connect_timeout,
            pool=settings.read_timeout,
        )
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=30.0,
        )
        if transport is None and fast_transport:
            transport = AsyncioTransport(limits, verify)  # else stock httpx, the fallback
        self._http = httpx.AsyncClient(
            headers=headers, timeout=timeout, limits=limits, transport=transport, verify=verify
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- the request -------------------------------------------------------------

    def body(self, request: ChatRequest) -> dict[str, Any]:
        s = self.settings
        max_tokens = request.max_tokens if request.max_tokens is not None else s.max_tokens
        body: dict[str, Any] = {
            "model": s.model,
            "messages": request.messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": max(1, min(int(max_tokens), MAX_TOKENS_CAP)),
            "temperature": s.temperature,
            "top_p": s.top_p,
        }
        for key, value in request.extra.items():
            if key not in _OWNED_KEYS:
                body[key] = value
        if request.tools:
            body["tools"] = request.tools
        else:
            body.pop("tools", None)  # the gateway rejects an empty list
            body.pop("tool_choice", None)
        if request.response_format:
            body["response_format"] = request.response_format
        if not body.get("temperature"):  # the model rejects 0
            body["temperature"] = s.temperature
        return body

    # --- streaming ---------------------------------------------------------------

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Yield the answer's events; the last one is ``Finish``.

        Until the gateway has begun answering (its first usable chunk), the whole wait —
        connects, retries, backoffs — is bounded by ``answer_start_timeout``; after that
        only the per-read timeout applies, so a long answer streams as long as it keeps coming.
        """
        self.capabilities.check(request)
        content = json.dumps(self.body(request), ensure_ascii=False).encode()
        max_retries = self.settings.max_retries
        budget = self.settings.answer_start_timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        attempt = 0
        last: GatewayError | None = None
        while True:
            yielded = False
            parser = StreamParser(self._secret)
            response: httpx.Response | None = None
            batcher: SSEBatcher | None = None  # None: a whole JSON body, not SSE
            chunks: AsyncIterator[bytes] | None = None
            try:
                try:
                    async with asyncio.timeout_at(deadline):
                        response = await self._http.send(
                            self._http.build_request("POST", self.url, content=content), stream=True
                        )
                        if response.status_code != 200:
                            raise failures.from_status(
                                response.status_code, await response.aread(), response.headers, self._secret
                            )
                        if "text/event-stream" in response.headers.get("content-type", ""):
                            batcher = SSEBatcher()
                            chunks = _body(response)
                            events, ended = await _until_started(chunks, batcher, parser)
                        else:
                            ended = True
                            events = self._whole_body(parser, await response.aread())
                except TimeoutError:
                    raise failures.no_start(self.url, budget, attempt + 1, last) from None
                # The answer has begun (or the body ended): the bound no longer applies.
                for event in events:
                    yielded = True
                    yield event
                if parser.error is not None:
                    raise parser.error
                if not ended and not parser.done:
                    assert chunks is not None and batcher is not None
                    feed = parser.feed
                    async for chunk in chunks:
                        datas = batcher.feed(chunk)
                        if not datas:
                            continue
                        for event in feed(datas):
                            yielded = True
                            yield event
                        if parser.error is not None:
                            raise parser.error
                        if parser.done:
                            break
                    else:
                        ended = True
                        for event in feed(batcher.close()):
                            yielded = True
                            yield event
                        if parser.error is not None:
                            raise parser.error
                if batcher is not None:
                    if parser.bad or parser.complete:
                        parser.check_usable(self.url)
                    if not parser.complete:
                        raise failures.truncated(self.url)
                for event in parser.finish():
                    yielded = True
                    yield event
                if chunks is not None and not ended:
                    await _drain(chunks)
                return
            except GatewayError as exc:
                error = exc
            except httpx.RequestError as exc:  # connect errors, timeouts, cut connections
                if parser.finish_reason is not None and parser.error is None:
                    # The answer had finished; only the usage chunk or [DONE] was lost.
                    log.info("gateway stream cut after its finish_reason: %s", exc)
                    for event in parser.finish():
                        yield event
                    return
                error = failures.from_transport(exc, self.url)
            finally:
                parser.report(log, self.url)
                if response is not None:
                    try:
                        await response.aclose()
                    except httpx.HTTPError:  # closing a broken connection: nothing to keep
                        pass
            if yielded:
                if isinstance(error, StreamInterrupted):
                    raise error
                raise failures.interrupted(error) from error
            if not error.retryable or attempt >= max_retries:
                if error.retryable:
                    failures.exhausted(error, attempt + 1)
                raise error
            delay = self._retry_delay(error, attempt)
            if delay is None:
                raise failures.wait_too_long(error)
            if loop.time() + delay >= deadline:
                # The next attempt could not begin within the answer-start budget: give up
                # now with what went wrong (more useful to the user than "too slow").
                if error.kind == "timeout":
                    raise failures.no_start(self.url, budget, attempt + 1, error)
                raise failures.exhausted(error, attempt + 1)
            attempt += 1
            last = error
            log.warning("gateway call failed, retry %d/%d in %.2fs: %s", attempt, max_retries, delay, error.log_message)
            await asyncio.sleep(delay)

    def _whole_body(self, parser: StreamParser, raw: bytes) -> list[StreamEvent]:
        """A 200 answer that is not SSE: a JSON completion, or a MiniMax error."""
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise failures.bad_body(self.url, f"{exc}: {raw[:200]!r}") from None
        if not isinstance(data, dict):
            raise failures.bad_body(self.url, f"unexpected JSON {raw[:200]!r}")
        events = parser.whole(data)
        if not data.get("choices"):
            raise failures.bad_body(self.url, f"no choices in {raw[:200]!r}")
        return events

    def _retry_delay(self, error: GatewayError, attempt: int) -> float | None:
        """Seconds before the next attempt; None to give up now."""
        s = self.settings
        if error.retry_after is not None:
            # A server asking for longer than we are willing to wait: fail now and say so,
            # rather than sleeping the cap only to be refused again.
            if error.retry_after > s.retry_after_cap:
                return None
            return error.retry_after
        backoff = min(s.retry_max_delay, s.retry_base_delay * (2**attempt))
        return backoff * (0.75 + random.random() * 0.25)

    # --- the whole answer ----------------------------------------------------------

    async def complete(self, request: ChatRequest) -> Completion:
        """Collect a streamed answer (handy for structured-output calls)."""
        return await collect(self.stream(request))


async def collect(events: AsyncIterator[StreamEvent]) -> Completion:
    """A whole answer from its stream of events (any gateway's ``stream``)."""
    text: list[str] = []
    reasoning: list[str] = []
    result = Completion()
    async for event in events:
        if type(event) is TextDelta:
            text.append(event.text)
        elif type(event) is ReasoningDelta:
            reasoning.append(event.text)
        elif type(event) is ToolCall:
            result.tool_calls.append(event)
        elif type(event) is Usage:
            result.usage = event
        elif type(event) is Finish:
            result.finish_reason = event.reason
    result.text = "".join(text)
    result.reasoning = "".join(reasoning)
    return result
