"""Our SSE decoder, read in batches: the spec's fields, and every split of the bytes gives
the same events."""

from __future__ import annotations

from bot.gateway.sse import ServerSentEvent, SSEBatcher, SSEDecoder

STREAM = (
    b": keep-alive comment\r\n"
    b'data: {"a": "\xe4\xbd\xa0\xe5\xa5\xbd"}\r\n\r\n'
    b"event: message\ndata: line one\ndata: line two\n\n"
    b"data: third\r\rdata: [DONE]\n\n"
)
EXPECTED = ['{"a": "你好"}', "line one\nline two", "third", "[DONE]"]


def decode(pieces: list[bytes]) -> tuple[list[str], list[int]]:
    batcher = SSEBatcher()
    out, sizes = [], []
    for piece in pieces:
        got = batcher.feed(piece)
        sizes.append(len(got))
        out += got
    out += batcher.close()
    return out, sizes


def test_one_read_gives_every_event_at_once():
    events, sizes = decode([STREAM])
    assert events == EXPECTED and sizes == [4]


def test_every_split_point_including_inside_utf8_and_crlf():
    for cut in range(1, len(STREAM)):
        assert decode([STREAM[:cut], STREAM[cut:]])[0] == EXPECTED, cut


def test_byte_by_byte():
    assert decode([bytes([b]) for b in STREAM])[0] == EXPECTED


def test_last_event_without_blank_line_is_kept_at_close():
    assert decode([b"data: tail"])[0] == ["tail"]


# --- the line decoder, field by field (WHATWG event-stream) -----------------------------------


def events(text: str) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    out = [decoder.decode(line) for line in text.split("\n")]
    return [e for e in out if e is not None]


def test_fields_event_id_retry_and_multiline_data():
    got = events("event: delta\nid: 7\nretry: 1500\ndata: one\ndata:two\ndata:  three\n\ndata: next\n\n")
    assert got == [
        ServerSentEvent("one\ntwo\n three", "delta", "7", 1500),
        ServerSentEvent("next", "message", "7", None),
    ]  # the id carries over


def test_comments_unknown_fields_and_bad_values_are_ignored():
    got = events(": ping\nfoo: bar\nretry: 12a\nid: bad\0id\ndata\n\ndata: x\n\n")
    # "data" without a colon is a data field with an empty value: an event with empty data.
    assert got == [ServerSentEvent("", "message", "", None), ServerSentEvent("x")]


def test_a_blank_line_without_data_dispatches_nothing_and_resets_the_type():
    assert events("event: ping\n\ndata: after\n\n") == [ServerSentEvent("after", "message")]


def test_batcher_drops_a_leading_byte_order_mark_and_empty_events():
    assert decode([b"\xef\xbb", b"\xbfdata: first\n\ndata:\n\ndata: \xef\xbb\xbfkept\n\n"])[0] == [
        "first",
        "\ufeffkept",
    ]
