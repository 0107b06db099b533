"""The gateway client against the fake gateway: a real HTTP server speaking SSE."""

from __future__ import annotations

import asyncio
import socket
import time
from email.utils import formatdate

import httpx
import pytest

from bot.config import Settings
from bot.gateway import failures
from bot.gateway.capabilities import NO_STRUCTURED, NO_TOOLS, NO_VISION
from bot.gateway.client import GatewayClient
from bot.gateway.errors import CapabilityError, GatewayError, StreamInterrupted
from bot.gateway.events import ChatRequest, Finish, ReasoningDelta, TextDelta, ToolCall, Usage
from tests.fakes.gateway import Answer, FakeGateway, FakeToolCall

KEY = "sk-test-0123456789-secret"


def make_settings(base_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "BYTESPIKE_API_KEY": KEY,
        "BYTESPIKE_BASE_URL": base_url,
        "BOT_RETRY_BASE_DELAY": 0.001,
        "BOT_RETRY_MAX_DELAY": 0.01,
        "BOT_RETRY_AFTER_CAP": 5,
        "BOT_MAX_RETRIES": 2,
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def gw():
    async with FakeGateway(api_key=KEY) as gateway:
        yield gateway


@pytest.fixture
async def client(gw):
    async with GatewayClient(make_settings(gw.base_url)) as c:
        yield c


def ask(text: str = "hello", **kwargs: object) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}], **kwargs)  # type: ignore[arg-type]


async def collect(client: GatewayClient, request: ChatRequest | None = None) -> list:
    return [event async for event in client.stream(request or ask())]


def visible(events: list) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def thought(events: list) -> str:
    return "".join(e.text for e in events if isinstance(e, ReasoningDelta))


# --- the request ------------------------------------------------------------------------


async def test_request_shape_and_auth_header(gw, client):
    await collect(client, ask("hi", tools=[], max_tokens=99999, extra={"n": 3, "stream": False}))
    sent = gw.last.body
    assert gw.last.authorization == f"Bearer {KEY}"
    assert sent["model"] == "minimax-m2.7"
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["max_tokens"] == 16384
    assert (sent["temperature"], sent["top_p"]) == (1.0, 0.95)
    assert "tools" not in sent
    assert sent.get("n", 1) == 1
    assert sent["messages"] == [{"role": "user", "content": "hi"}]


async def test_tools_and_response_format_are_sent_when_given(gw, client):
    tool = {"type": "function", "function": {"name": "clock", "parameters": {"type": "object"}}}
    fmt = {"type": "json_object"}
    await collect(client, ask(tools=[tool], response_format=fmt))
    assert gw.last.body["tools"] == [tool]
    assert gw.last.body["response_format"] == fmt
    await collect(client, ask(tools=None))
    assert "tools" not in gw.last.body and "response_format" not in gw.last.body


async def test_default_max_tokens_from_settings(gw):
    async with GatewayClient(make_settings(gw.base_url, BOT_MAX_TOKENS=777)) as c:
        await collect(c)
    assert gw.last.body["max_tokens"] == 777


# --- reasoning in every shape -------------------------------------------------------------


@pytest.mark.parametrize("style", ["inline", "inline_no_open", "reasoning_content", "reasoning_details"])
@pytest.mark.parametrize("chunk_size", [1, 3, 64])
async def test_reasoning_shapes_never_leak(gw, client, style, chunk_size):
    gw.script(
        Answer(
            text="Visible answer.",
            reasoning="Private thoughts </th <think>",
            reasoning_style=style,
            split_tags=True,
            chunk_size=chunk_size,
        )
    )
    events = await collect(client)
    assert visible(events) == "Visible answer."
    assert "Private" in thought(events)
    assert all("Private" not in e.text and "think>" not in e.text for e in events if isinstance(e, TextDelta))
    assert isinstance(events[-1], Finish) and events[-1].reason == "stop"


async def test_inline_tags_split_across_chunks(gw, client):
    # "<thi" + "nk>" and "</th" + "ink>" in separate chunks, as the field guide warns.
    gw.script(Answer(chunks=["<thi", "nk>plan", " more</th", "ink>", "\n\nHel", "lo"]))
    events = await collect(client)
    assert (thought(events), visible(events)) == ("plan more", "Hello")


async def test_text_streams_before_the_end(gw, client):
    gw.script(Answer(text="one two three four", reasoning="r", chunk_size=4, chunk_delay=0.001))
    kinds = [type(e) for e in [e async for e in client.stream(ask())]]
    assert kinds.count(TextDelta) > 1  # streamed in pieces, not only at the end


# --- tool calls, usage, finish ------------------------------------------------------------


async def test_two_parallel_tool_calls_interleaved(gw, client):
    gw.script(
        Answer(
            text="",
            reasoning="use tools",
            tool_calls=[
                FakeToolCall("weather", {"city": "上海", "days": 3}, id="call_a"),
                FakeToolCall("clock", '{"tz": "Asia/Shanghai"}', id="call_b"),
            ],
            interleave_tool_calls=True,
            chunk_size=3,
        )
    )
    events = await collect(client, ask(tools=[{"type": "function", "function": {"name": "weather"}}]))
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert [(c.index, c.id, c.name) for c in calls] == [(0, "call_a", "weather"), (1, "call_b", "clock")]
    assert calls[0].arguments == '{"city": "上海", "days": 3}'
    assert calls[1].arguments == '{"tz": "Asia/Shanghai"}'
    assert isinstance(events[-1], Finish) and events[-1].reason == "tool_calls"
    assert events.index(calls[-1]) < len(events) - 1


async def test_usage_from_final_chunk_without_choices(gw, client):
    gw.script(Answer(text="hi", prompt_tokens=1200, completion_tokens=7, cached_tokens=1024))
    events = await collect(client)
    assert [e for e in events if isinstance(e, Usage)] == [Usage(1200, 7, 1024)]


async def test_usage_on_the_finish_chunk(gw, client):
    gw.script(Answer(text="hi", usage="with_finish", prompt_tokens=5, completion_tokens=2))
    assert (await client.complete(ask())).usage == Usage(5, 2, 0)


async def test_missing_usage_is_tolerated(gw, client):
    gw.script(Answer(text="hi", usage="none"))
    events = await collect(client)
    assert not any(isinstance(e, Usage) for e in events)
    assert visible(events) == "hi" and events[-1] == Finish("stop")


@pytest.mark.parametrize("reason", ["length", "content_filter"])
async def test_finish_reason_passed_through(gw, client, reason):
    gw.script(Answer(text="partial", reasoning="r", finish_reason=reason))
    result = await client.complete(ask())
    assert (result.text, result.finish_reason) == ("partial", reason)


async def test_stream_without_done_but_with_finish_reason_is_complete(gw, client):
    gw.script(Answer(text="fine", reasoning="r", send_done=False))
    assert (await client.complete(ask())).text == "fine"


async def test_non_streamed_json_body(gw, client):
    gw.script(Answer(text="whole", reasoning="inner", json_body=True, prompt_tokens=3, completion_tokens=4))
    result = await client.complete(ask())
    assert (result.text, result.reasoning, result.finish_reason) == ("whole", "inner", "stop")
    assert result.usage == Usage(3, 4, 0)


async def test_complete_collects_everything(gw, client):
    gw.script(Answer(text="你好，世界", reasoning="想一想", reasoning_style="reasoning_content", chunk_size=2))
    result = await client.complete(ask())
    assert (result.text, result.reasoning, result.tool_calls) == ("你好，世界", "想一想", [])


async def test_consumer_may_stop_early(gw, client):
    gw.script(Answer(text="a long answer " * 50, reasoning="r", chunk_size=5, chunk_delay=0.0005))
    async for event in client.stream(ask()):
        if isinstance(event, TextDelta):
            break
    assert (await client.complete(ask("again"))).text == "echo: again"


# --- errors that are not retried ----------------------------------------------------------


@pytest.mark.parametrize(
    "status,kind,user",
    [
        (400, "bad_request", failures.USER_BAD_REQUEST),
        (422, "bad_request", failures.USER_BAD_REQUEST),
        (401, "auth", "the bot's API key was rejected: tell whoever runs this bot"),
        (402, "billing", failures.USER_BILLING),
    ],
)
async def test_client_errors_are_not_retried(gw, client, status, kind, user):
    gw.script(Answer(status=status, error_body={"error": {"message": f"gateway says no ({status})"}}), "unused")
    with pytest.raises(GatewayError) as info:
        await collect(client)
    err = info.value
    assert (err.status, err.kind, err.user_message) == (status, kind, user)
    assert f"gateway says no ({status})" in err.log_message
    assert len(gw.requests) == 1


async def test_real_auth_failure_from_the_gateway(gw):
    async with GatewayClient(make_settings(gw.base_url, BYTESPIKE_API_KEY="wrong-key-123456")) as c:
        with pytest.raises(GatewayError) as info:
            await collect(c)
    assert info.value.kind == "auth" and "tell whoever runs this bot" in info.value.user_message


async def test_key_never_in_log_message(gw, client):
    gw.script(Answer(status=401, error_body={"error": {"message": f"key {KEY} is not valid"}}))
    with pytest.raises(GatewayError) as info:
        await collect(client)
    assert KEY not in info.value.log_message and KEY not in str(info.value)
    assert "[redacted]" in info.value.log_message


# --- retries ------------------------------------------------------------------------------


async def test_5xx_retried_then_success(gw, client):
    gw.script(Answer(status=500), Answer(status=503), Answer(text="recovered", reasoning="r"))
    assert (await client.complete(ask())).text == "recovered"
    assert len(gw.requests) == 3


async def test_retries_exhausted_gives_a_clear_message(gw, client):
    gw.script(*[Answer(status=502) for _ in range(3)], "unused")
    with pytest.raises(GatewayError) as info:
        await collect(client)
    assert info.value.user_message == failures.USER_UPSTREAM
    assert "gave up after 3 attempts" in info.value.log_message
    assert len(gw.requests) == 3


async def test_429_retry_after_is_honoured(gw):
    async with GatewayClient(make_settings(gw.base_url, BOT_RETRY_BASE_DELAY=0)) as c:
        gw.script(Answer(status=429, retry_after="0.3"), "after the wait")
        started = time.monotonic()
        result = await c.complete(ask())
        waited = time.monotonic() - started
    assert result.text == "after the wait"
    assert waited >= 0.3  # the backoff alone would have been 0 s
    assert len(gw.requests) == 2


async def test_429_retry_after_beyond_the_cap_fails_at_once(gw, client):
    gw.script(Answer(status=429, retry_after="600"), "unused")
    with pytest.raises(GatewayError) as info:
        await collect(client)
    assert info.value.kind == "rate_limit" and "10 minutes" in info.value.user_message
    assert len(gw.requests) == 1


async def test_429_without_retry_after_is_retried_a_bounded_number_of_times(gw, client):
    gw.script(*[Answer(status=429) for _ in range(5)])
    with pytest.raises(GatewayError) as info:
        await collect(client)
    assert info.value.user_message == failures.USER_RATE_LIMIT
    assert len(gw.requests) == 3  # max_retries = 2


def test_retry_after_as_seconds_and_http_date():
    assert failures.parse_retry_after(httpx.Headers({"Retry-After": "7"})) == 7
    in_a_minute = formatdate(time.time() + 60, usegmt=True)
    assert 55 <= failures.parse_retry_after(httpx.Headers({"Retry-After": in_a_minute})) <= 60
    assert failures.parse_retry_after(httpx.Headers({"retry-after-ms": "250"})) == 0.25
    assert failures.parse_retry_after(httpx.Headers({"Retry-After": "soon"})) is None


async def test_connect_error_retried_then_reported():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with GatewayClient(make_settings(f"http://127.0.0.1:{port}")) as c:
        with pytest.raises(GatewayError) as info:
            await collect(c)
    assert info.value.kind == "network" and info.value.user_message == failures.USER_NETWORK
    assert "3 attempts" in info.value.log_message


async def test_a_base_url_given_with_v1_still_reaches_the_gateway(gw):
    """OpenAI-style clients take the root with /v1; so may an operator: it is not doubled."""
    settings = make_settings(gw.base_url + "/v1/")
    assert settings.base_url == gw.base_url
    async with GatewayClient(settings) as c:
        gw.script(Answer(text="reached", reasoning="ok"))
        assert "reached" in visible(await collect(c))


async def test_a_wrong_path_says_which_setting_to_check(gw):
    async with GatewayClient(make_settings(gw.base_url + "/api")) as c:  # no such path: a plain 404
        with pytest.raises(GatewayError) as info:
            await collect(c)
    assert info.value.status == 404 and info.value.user_message == failures.USER_NOT_FOUND
    assert "BYTESPIKE_BASE_URL" in info.value.log_message


async def test_read_timeout_is_reported(gw):
    async with GatewayClient(make_settings(gw.base_url, BOT_READ_TIMEOUT=0.05, BOT_MAX_RETRIES=0)) as c:
        gw.script(Answer(text="late", first_token_delay=1.0))
        with pytest.raises(GatewayError) as info:
            await collect(c)
    assert info.value.kind == "timeout"


# --- MiniMax base_resp errors on HTTP 200 ---------------------------------------------------


@pytest.mark.parametrize(
    "code,kind",
    [
        (1004, "auth"),
        (1008, "billing"),
        (1026, "content_filter"),
        (1027, "content_filter"),
        (1039, "context"),
        (2013, "bad_request"),
    ],
)
async def test_base_resp_errors_not_retried(gw, client, code, kind):
    gw.script(Answer(base_resp=(code, "minimax says no")), "unused")
    with pytest.raises(GatewayError) as info:
        await collect(client)
    assert (info.value.code, info.value.kind) == (code, kind)
    assert "minimax says no" in info.value.log_message
    assert len(gw.requests) == 1


@pytest.mark.parametrize("code", [1002, 1000, 1001, 1024, 1033])
async def test_transient_base_resp_retried(gw, client, code):
    gw.script(Answer(base_resp=(code, "busy")), Answer(text="ok now", reasoning="r"))
    assert (await client.complete(ask())).text == "ok now"
    assert len(gw.requests) == 2


async def test_base_resp_in_the_first_stream_chunk_is_retried(gw, client):
    gw.script(Answer(base_resp=(1002, "rpm limit"), base_resp_after=0), "second try")
    assert (await client.complete(ask())).text == "second try"


async def test_base_resp_mid_stream_keeps_the_partial_answer(gw, client):
    gw.script(
        Answer(
            text="abcdefghij" * 3, reasoning="r", chunk_size=5, base_resp=(1027, "output sensitive"), base_resp_after=5
        ),
        "unused",
    )
    text = []
    with pytest.raises(StreamInterrupted) as info:
        async for event in client.stream(ask()):
            if isinstance(event, TextDelta):
                text.append(event.text)
    assert text and ("abcdefghij" * 3).startswith("".join(text))
    assert info.value.code == 1027 and "sensitive" in info.value.user_message
    assert len(gw.requests) == 1


# --- a stream cut mid-answer --------------------------------------------------------------


async def test_cut_after_text_raises_interrupted_and_keeps_text(gw, client):
    full = "The quick brown fox jumps over the lazy dog. " * 4
    gw.script(Answer(text=full, reasoning="r", chunk_size=10, cut_after=6, chunk_delay=0.001), "unused")
    text = []
    with pytest.raises(StreamInterrupted) as info:
        async for event in client.stream(ask()):
            if isinstance(event, TextDelta):
                text.append(event.text)
    partial = "".join(text)
    assert partial and full.startswith(partial) and partial != full
    assert info.value.kind == "interrupted"
    assert info.value.user_message == failures.USER_INTERRUPTED
    assert len(gw.requests) == 1  # never retried once text was shown


async def test_cut_after_the_finish_reason_keeps_the_whole_answer(gw, client):
    # Content, then the finish chunk; the connection drops before usage and [DONE].
    gw.script(Answer(chunks=["<think>r</think>all of it"], cut_after=2), "unused")
    events = await collect(client)
    assert visible(events) == "all of it" and thought(events) == "r"
    assert isinstance(events[-1], Finish) and events[-1].reason == "stop"
    assert not any(isinstance(e, Usage) for e in events)
    assert len(gw.requests) == 1


async def test_cut_before_anything_was_shown_is_retried(gw, client):
    # Untagged content is held back (it may be reasoning), so nothing was shown yet.
    gw.script(
        Answer(text="held back", reasoning_style="none", chunk_size=3, cut_after=2),
        Answer(text="retried", reasoning="r"),
    )
    assert (await client.complete(ask())).text == "retried"
    assert len(gw.requests) == 2


# --- capabilities -------------------------------------------------------------------------

IMAGE = {
    "role": "user",
    "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
    ],
}


@pytest.mark.parametrize(
    "switch,request_,message",
    [
        ("BOT_VISION", ChatRequest(messages=[IMAGE]), NO_VISION),
        ("BOT_TOOLS", ChatRequest(messages=[IMAGE], tools=[{"type": "function", "function": {"name": "x"}}]), NO_TOOLS),
        (
            "BOT_STRUCTURED_OUTPUT",
            ChatRequest(messages=[IMAGE], response_format={"type": "json_object"}),
            NO_STRUCTURED,
        ),
    ],
)
async def test_capabilities_checked_before_the_call(gw, switch, request_, message):
    async with GatewayClient(make_settings(gw.base_url, **{switch: False})) as c:
        with pytest.raises(CapabilityError) as info:
            await collect(c, request_)
    assert info.value.user_message == message
    assert gw.requests == []


async def test_images_sent_when_vision_is_on(gw, client):
    await collect(client, ChatRequest(messages=[IMAGE]))
    assert gw.last.body["messages"] == [IMAGE]


# --- many at once ----------------------------------------------------------------------------


async def test_many_concurrent_streams(gw, client):
    results = await asyncio.gather(*(client.complete(ask(f"n{i}")) for i in range(50)))
    assert sorted(r.text for r in results) == sorted(f"echo: n{i}" for i in range(50))


async def test_plain_content_is_held_back_until_the_end(gw, client):
    # No think tags and no reasoning field: it might be reasoning with a missing <think>,
    # so nothing is shown until the stream ends and proves it was the answer.
    gw.script(Answer(text="plain answer here", reasoning_style="none", chunk_size=4))
    events = await collect(client)
    texts = [e for e in events if isinstance(e, TextDelta)]
    assert texts == [TextDelta("plain answer here")]
    assert events.index(texts[0]) == len(events) - 3  # just before Usage and Finish


@pytest.mark.parametrize("style", ["inline", "inline_no_open", "reasoning_content", "reasoning_details"])
async def test_answer_without_reasoning_streams_in_pieces(gw, client, style):
    gw.script(Answer(text="streams as it comes", reasoning_style=style, chunk_size=5, chunk_delay=0.002))
    events = await collect(client)
    assert visible(events) == "streams as it comes"
    assert sum(isinstance(e, TextDelta) for e in events) > 1
