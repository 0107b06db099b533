"""Property-based fuzzing of what the gateway sends us: the SSE decoder and batcher, and the
chunk parser. Whatever arrives, nothing but a ``GatewayError`` may escape, and well-formed
content survives any split into network reads and any bad chunks around it."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.gateway.errors import GatewayError
from bot.gateway.events import Finish, TextDelta
from bot.gateway.parser import StreamParser
from bot.gateway.sse import SSEBatcher, SSEDecoder

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


def batch_decode(pieces: list[bytes]) -> list[str]:
    batcher = SSEBatcher()
    out: list[str] = []
    for piece in pieces:
        out += batcher.feed(piece)
    return out + batcher.close()


# --- SSE ------------------------------------------------------------------------------------

cuts = st.lists(st.integers(min_value=0, max_value=10_000), max_size=12)


@FAST
@given(data=st.binary(max_size=600), cuts=cuts)
def test_any_bytes_in_any_reads_never_raise(data, cuts):
    out = batch_decode(split(data, cuts))
    assert all(isinstance(item, str) and item for item in out)


@FAST
@given(data=st.binary(max_size=600), cuts=cuts)
def test_the_split_into_reads_never_changes_what_is_decoded(data, cuts):
    # Bytes cut inside a UTF-8 sequence or a CRLF still decode as if they came in one read.
    assert batch_decode(split(data, cuts)) == batch_decode([data])


line_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=30)
newline = st.sampled_from(["\n", "\r\n", "\r"])
event = st.fixed_dictionaries(
    {"data": st.lists(line_text, min_size=1, max_size=4)},
    optional={"event": line_text, "id": line_text, "retry": st.integers(0, 10**6), "comment": line_text},
)


def render(events: list[dict], eol: str, space: bool) -> bytes:
    lines: list[str] = []
    for ev in events:
        if "comment" in ev:
            lines.append(":" + ev["comment"])
        if "event" in ev:
            lines.append("event: " + ev["event"])
        for value in ev["data"]:
            # Without the optional space only values that do not start with one keep it.
            lines.append(("data: " if space or value.startswith(" ") else "data:") + value)
        if "id" in ev:
            lines.append("id: " + ev["id"])
        if "retry" in ev:
            lines.append(f"retry: {ev['retry']}")
        lines.append("")
    return "".join(line + eol for line in lines).encode()


@FAST
@given(events=st.lists(event, max_size=6), eol=newline, space=st.booleans(), cuts=cuts)
def test_well_formed_events_survive_any_split(events, eol, space, cuts):
    stream = render(events, eol, space)
    expected = ["\n".join(ev["data"]) for ev in events]
    expected = [data for data in expected if data]  # events with empty data carry nothing
    assert batch_decode(split(stream, cuts)) == expected


@FAST
@given(events=st.lists(event, max_size=6), space=st.booleans())
def test_line_decoder_gives_every_field(events, space):
    decoder = SSEDecoder()
    got = []
    for line in render(events, "\n", space).decode().split("\n"):
        ev = decoder.decode(line)
        if ev is not None:
            got.append(ev)
    assert [ev.data for ev in got] == ["\n".join(ev["data"]) for ev in events]
    last_id = ""
    for sent, ev in zip(events, got):
        last_id = sent.get("id", last_id) if "\0" not in sent.get("id", "") else last_id
        assert ev.event == (sent.get("event") or "message")
        assert ev.retry == sent.get("retry")
        assert ev.id == last_id


# --- the chunk parser --------------------------------------------------------------------

KEYS = [
    "choices",
    "delta",
    "message",
    "content",
    "refusal",
    "reasoning_content",
    "reasoning_details",
    "tool_calls",
    "index",
    "id",
    "function",
    "name",
    "arguments",
    "finish_reason",
    "usage",
    "prompt_tokens",
    "completion_tokens",
    "prompt_tokens_details",
    "cached_tokens",
    "text",
    "role",
    "error",
    "base_resp",
    "status_code",
    "status_msg",
    "code",
]
# JSON's edge values explicitly (json.loads accepts Infinity and NaN), not left to chance.
edge = st.sampled_from([float("inf"), float("-inf"), float("nan"), -0.0, 1e308, 2**64, -1, "", "0"])
scalar = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8) | edge
any_json = st.recursive(
    scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    max_leaves=12,
)


def field(good: st.SearchStrategy) -> st.SearchStrategy:
    """Usually the right shape, sometimes any JSON at all."""
    return st.one_of(good, good, any_json)


words = st.text(max_size=10)
fragment = st.fixed_dictionaries(
    {},
    optional={
        "index": field(st.integers(0, 3)),
        "id": field(words),
        "type": st.just("function"),
        "function": field(st.fixed_dictionaries({}, optional={"name": field(words), "arguments": field(words)})),
    },
)
delta = st.fixed_dictionaries(
    {},
    optional={
        "role": field(st.sampled_from(["", "assistant"])),
        "content": field(words),
        "refusal": field(words),
        "reasoning_content": field(words),
        "reasoning_details": field(st.lists(st.fixed_dictionaries({"text": field(words)}), max_size=2)),
        "tool_calls": field(st.lists(fragment, max_size=3)),
    },
)
choice = st.fixed_dictionaries(
    {},
    optional={
        "index": field(st.just(0)),
        "delta": field(delta),
        "message": field(delta),
        "finish_reason": field(st.sampled_from(["stop", "length", "tool_calls", None])),
    },
)
usage = st.fixed_dictionaries(
    {},
    optional={
        "prompt_tokens": field(st.integers(0, 10**6)),
        "completion_tokens": field(st.integers(0, 10**6)),
        "prompt_tokens_details": field(st.fixed_dictionaries({"cached_tokens": field(st.integers(0, 10**6))})),
    },
)
chunk = st.fixed_dictionaries(
    {},
    optional={
        "choices": field(st.lists(field(choice), max_size=2)),
        "usage": field(usage),
        "error": st.one_of(st.none(), any_json),
        "base_resp": field(
            st.fixed_dictionaries(
                {"status_code": st.one_of(field(st.sampled_from([0, 1002, 1026])), edge), "status_msg": field(words)}
            )
        ),
    },
)
data_line = st.one_of(chunk.map(json.dumps), any_json.map(json.dumps), st.text(max_size=20), st.just("[DONE]"))


@FAST
@given(reads=st.lists(st.lists(data_line, max_size=5), max_size=6))
def test_parser_lets_only_gateway_errors_escape(reads):
    parser = StreamParser("secret-key")
    events = []
    try:
        for datas in reads:
            events += parser.feed(datas)
            if parser.error is not None or parser.done:
                break
        parser.check_usable("http://gateway")
        events += parser.finish()
    except GatewayError:
        return
    assert isinstance(events[-1], Finish)


good_text = st.lists(
    st.text(st.characters(codec="utf-8", exclude_characters="<"), min_size=1, max_size=8), min_size=1, max_size=8
)
bad_line = st.one_of(
    st.text(max_size=20).filter(lambda s: s != "[DONE]"),
    st.one_of(scalar, st.lists(scalar, max_size=3)).map(json.dumps),
    st.fixed_dictionaries({"choices": st.one_of(scalar, st.lists(scalar, min_size=1, max_size=3))}).map(json.dumps),
)


@FAST
@given(pieces=good_text, bad=st.lists(st.tuples(st.integers(0, 20), bad_line), max_size=6), read_size=st.integers(1, 4))
def test_bad_chunks_never_change_the_answer(pieces, bad, read_size):
    lines = [json.dumps({"choices": [{"index": 0, "delta": {"role": "", "content": p}}]}) for p in pieces]
    lines[0] = json.dumps({"choices": [{"index": 0, "delta": {"content": "<think>hm</think>" + pieces[0]}}]})
    for position, line in sorted(bad, reverse=True):
        lines.insert(position % (len(lines) + 1), line)
    lines.append(json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    parser = StreamParser()
    events = []
    for start in range(0, len(lines), read_size):
        events += parser.feed(lines[start : start + read_size])
    parser.check_usable("http://gateway")
    events += parser.finish()
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "".join(pieces).lstrip()
    assert events[-1] == Finish("stop")
    assert parser.bad == len(bad)  # each counted, for the one warning of the stream
