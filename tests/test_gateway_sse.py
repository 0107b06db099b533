"""SSE read in batches: every split of the bytes gives the same events."""
from __future__ import annotations

from bot.gateway.sse import SSEBatcher

STREAM = (
    b": keep-alive comment\r\n"
    b"data: {\"a\": \"\xe4\xbd\xa0\xe5\xa5\xbd\"}\r\n\r\n"
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
