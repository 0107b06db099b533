"""What a misbehaving gateway does to an answer, through the real client and the fake gateway:
bad chunks are skipped (and logged once) without losing the answer, a garbage-only stream
is a clear error, a refusal is shown as the answer, and a gateway that never starts
answering is given up on within BOT_ANSWER_START_TIMEOUT."""

from __future__ import annotations

import logging
import time

import pytest

from bot.config import Settings
from bot.gateway import failures
from bot.gateway.client import GatewayClient
from bot.gateway.errors import GatewayError
from bot.gateway.events import ChatRequest, Finish, TextDelta, Usage
from tests.fakes.gateway import Answer, FakeGateway

KEY = "sk-robust-0123456789-secret"
ASK = ChatRequest(messages=[{"role": "user", "content": "hello"}])
ANSWER = "The whole answer, every word of it, arrives intact."

# Valid JSON of the wrong shape, as broken or unusual gateways send it.
WRONG_SHAPES = [
    {"choices": "oops"},
    {"choices": ["not a dict"]},
    {"choices": [{"index": 0, "delta": "text?"}]},
    {"choices": [{"index": 0, "delta": {"content": 42}}]},
    {"choices": [{"index": 0, "delta": {"content": ["a", "b"]}}]},
    {"choices": [{"index": "zero", "delta": {"content": "stray"}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": "call me"}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [7, {"index": "x"}, {"function": "f"}]}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"name": 3}}]}}]},
    {"choices": [], "usage": {"prompt_tokens": "many", "completion_tokens": [1]}},
    {"choices": [{"index": 0, "delta": {}, "finish_reason": {"why": "?"}}]},
    {"choices": [{"index": 0, "delta": {"reasoning_details": "thoughts"}}]},
    [1, 2, 3],
    "null",
    "12",
    "not json at all",
    {"unrelated": True},
]


def settings(base_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "BYTESPIKE_API_KEY": KEY,
        "BYTESPIKE_BASE_URL": base_url,
        "BOT_RETRY_BASE_DELAY": 0.001,
        "BOT_RETRY_MAX_DELAY": 0.01,
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def gw():
    async with FakeGateway(api_key=KEY) as gateway:
        yield gateway


def bad_chunk_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "bot.gateway" and r.levelno == logging.WARNING and "unreadable chunk" in r.getMessage()
    ]


# --- bad chunks ---------------------------------------------------------------------------


@pytest.mark.parametrize("fast", [True, False])
async def test_wrong_shaped_chunks_mid_answer_keep_the_whole_answer(gw, caplog, fast):
    gw.script(
        Answer(
            text=ANSWER,
            reasoning="thinking first",
            chunk_size=5,
            chunk_delay=0.0005,
            insert={3: WRONG_SHAPES[:8], 9: WRONG_SHAPES[8:]},
            prompt_tokens=10,
            completion_tokens=4,
        )
    )
    caplog.set_level(logging.WARNING, "bot.gateway")
    async with GatewayClient(settings(gw.base_url), fast_transport=fast) as client:
        events = [e async for e in client.stream(ASK)]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == ANSWER
    assert [e for e in events if isinstance(e, Usage)] == [Usage(10, 4, 0)]
    assert events[-1] == Finish("stop")
    assert len(gw.requests) == 1
    # One warning for the whole stream, with the count: never one per chunk.
    [warning] = bad_chunk_warnings(caplog)
    assert f"skipped {len(WRONG_SHAPES)} unreadable chunk(s)" in warning.getMessage()


async def test_a_good_chunk_with_a_bad_part_keeps_its_text(gw):
    gw.script(
        Answer(
            raw_events=[
                {"choices": [{"index": 0, "delta": {"role": "", "content": "<think>r</think>Kept "}}]},
                {
                    "choices": [{"index": 0, "delta": {"content": "text", "tool_calls": "junk"}}],
                    "usage": {"prompt_tokens": "x"},
                },
                {"choices": [{"index": 0, "delta": {"role": ""}, "finish_reason": "stop"}]},
            ]
        )
    )
    async with GatewayClient(settings(gw.base_url)) as client:
        result = await client.complete(ASK)
    assert (result.text, result.finish_reason, result.usage, result.tool_calls) == ("Kept text", "stop", None, [])


async def test_the_warning_never_shows_the_api_key(gw, caplog):
    gw.script(Answer(text="fine", insert={1: [f"token {KEY} leaked by a proxy"]}))
    caplog.set_level(logging.WARNING, "bot.gateway")
    async with GatewayClient(settings(gw.base_url)) as client:
        assert (await client.complete(ASK)).text == "fine"
    [warning] = bad_chunk_warnings(caplog)
    assert KEY not in warning.getMessage() and "[redacted]" in warning.getMessage()


async def test_garbage_only_stream_is_a_clear_error_and_logged(gw, caplog):
    gw.script(Answer(raw_events=WRONG_SHAPES), "unused")
    caplog.set_level(logging.WARNING, "bot.gateway")
    async with GatewayClient(settings(gw.base_url, BOT_MAX_RETRIES=0)) as client:
        with pytest.raises(GatewayError) as info:
            await client.complete(ASK)
    err = info.value
    assert err.kind == "bad_body" and err.user_message == failures.USER_BAD_BODY
    assert "couldn't read" in err.user_message
    assert f"all {len(WRONG_SHAPES)} chunk(s) were unreadable" in err.log_message
    [warning] = bad_chunk_warnings(caplog)
    assert "(0 usable)" in warning.getMessage() and "oops" in warning.getMessage()


async def test_garbage_stream_is_retried_then_the_answer_comes(gw):
    gw.script(Answer(raw_events=["<html>bad gateway</html>"]), Answer(text="second try"))
    async with GatewayClient(settings(gw.base_url)) as client:
        assert (await client.complete(ASK)).text == "second try"
    assert len(gw.requests) == 2


async def test_a_stream_of_only_done_is_not_an_empty_answer(gw):
    gw.script(Answer(raw_events=[]), "unused")
    async with GatewayClient(settings(gw.base_url, BOT_MAX_RETRIES=0)) as client:
        with pytest.raises(GatewayError) as info:
            await client.complete(ASK)
    assert info.value.kind == "bad_body"


# --- refusals -----------------------------------------------------------------------------

REFUSAL = "I'm sorry, but I can't help with that request."


@pytest.mark.parametrize("chunk_size", [4, 100])
async def test_refusal_only_stream_is_the_answer(gw, chunk_size):
    gw.script(Answer(refusal=REFUSAL, chunk_size=chunk_size))
    async with GatewayClient(settings(gw.base_url)) as client:
        result = await client.complete(ASK)
    assert (result.text, result.finish_reason) == (REFUSAL, "stop")


async def test_refusal_chunks_with_an_empty_role_stream_as_text(gw):
    gw.script(
        Answer(
            raw_events=[
                {"choices": [{"index": 0, "delta": {"role": "", "content": None, "refusal": "No, "}}]},
                {"choices": [{"index": 0, "delta": {"role": "", "refusal": "sorry."}}]},
                {"choices": [{"index": 0, "delta": {"role": ""}, "finish_reason": "content_filter"}]},
            ]
        )
    )
    async with GatewayClient(settings(gw.base_url)) as client:
        result = await client.complete(ASK)
    assert (result.text, result.finish_reason) == ("No, sorry.", "content_filter")


# --- a gateway that accepts and never answers ------------------------------------------------


@pytest.mark.parametrize("fast", [True, False])
async def test_silent_gateway_gives_up_within_the_answer_start_bound(gw, fast):
    # The read timeout alone would wait (retries + 1) × 30 s; the bound ends it in 0.4 s.
    gw.script(*[Answer(hang=True) for _ in range(3)])
    async with GatewayClient(
        settings(gw.base_url, BOT_ANSWER_START_TIMEOUT=0.4, BOT_READ_TIMEOUT=30, BOT_MAX_RETRIES=2), fast_transport=fast
    ) as client:
        started = time.monotonic()
        with pytest.raises(GatewayError) as info:
            await client.complete(ASK)
        waited = time.monotonic() - started
    assert 0.35 <= waited < 10.0  # the bound, not (retries + 1) × the 30 s read timeout
    err = info.value
    assert err.kind == "timeout" and err.user_message == failures.USER_NO_START
    assert "did not start answering in time" in err.user_message and "try again" in err.user_message
    assert len(gw.requests) == 1


async def test_headers_then_silence_is_bounded_too(gw):
    gw.script(Answer(text="far too late", first_token_delay=30))
    async with GatewayClient(settings(gw.base_url, BOT_ANSWER_START_TIMEOUT=0.3, BOT_READ_TIMEOUT=30)) as client:
        started = time.monotonic()
        with pytest.raises(GatewayError) as info:
            await client.complete(ASK)
    assert time.monotonic() - started < 10.0  # the bound, not the 30 s read timeout
    assert info.value.user_message == failures.USER_NO_START


async def test_the_bound_covers_retries_and_backoffs(gw):
    # Each attempt times out on its own read timeout, and retries would go on for 3 × 0.25 s
    # plus backoff; the bound stops them at 0.5 s.
    gw.script(*[Answer(text="late", first_token_delay=30) for _ in range(10)])
    async with GatewayClient(
        settings(
            gw.base_url,
            BOT_ANSWER_START_TIMEOUT=0.5,
            BOT_READ_TIMEOUT=0.25,
            BOT_MAX_RETRIES=5,
            BOT_RETRY_BASE_DELAY=0.1,
            BOT_RETRY_MAX_DELAY=0.1,
        )
    ) as client:
        started = time.monotonic()
        with pytest.raises(GatewayError) as info:
            await client.complete(ASK)
    assert time.monotonic() - started < 1.5
    assert info.value.user_message == failures.USER_NO_START
    assert 2 <= len(gw.requests) <= 3


async def test_a_started_answer_may_outlast_the_bound(gw):
    # The bound is for the start only: afterwards each chunk has the read timeout.
    gw.script(Answer(text="slow but steady " * 4, reasoning="r", chunk_size=8, chunk_delay=0.05))
    async with GatewayClient(settings(gw.base_url, BOT_ANSWER_START_TIMEOUT=0.2, BOT_READ_TIMEOUT=1)) as client:
        started = time.monotonic()
        assert (await client.complete(ASK)).text == "slow but steady " * 4
    assert time.monotonic() - started > 0.4


def test_answer_start_timeout_setting_defaults_to_a_minute():
    assert Settings(_env_file=None).answer_start_timeout == 60  # type: ignore[call-arg]
    assert Settings(BOT_ANSWER_START_TIMEOUT="5", _env_file=None).answer_start_timeout == 5  # type: ignore[call-arg]
