"""Server-sent events (WHATWG event-stream), read in batches.

Awaiting the HTTP stream once per SSE event costs a lot of CPU per token. Instead we take
whatever bytes the network has delivered, split them into lines ourselves and run every
complete line through our ``SSEDecoder``; each network read yields the ``data`` of all the
events it completed, as one list.

The decoder follows the spec's line rules: lines end with CRLF, LF or CR; a line starting
with ``:`` is a comment; ``field:value`` with one leading space of the value removed (a line
without a colon is a field with an empty value); ``data`` lines of one event are joined with
``\\n``; ``event``, ``id`` (ignored if it contains NUL) and ``retry`` (ASCII digits only) set
the event's other fields; a blank line dispatches the event, unless it had no ``data``.
Unknown fields are ignored, and one leading byte-order mark of the stream is dropped.
One deliberate leniency: at the end of the body, an event missing only its final blank line
is still dispatched (``SSEBatcher.close``), so a gateway that forgets it loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class ServerSentEvent:
    data: str
    event: str = "message"
    id: str = ""  # the last event id seen in the stream so far (the spec's lastEventId)
    retry: int | None = None  # reconnection time in ms, if this event set one


class SSEDecoder:
    """Lines (without their line ending) → events. Keeps state between calls."""

    __slots__ = ("_data", "_event", "_last_id", "_retry")

    def __init__(self) -> None:
        self._data: list[str] = []
        self._event = ""
        self._last_id = ""
        self._retry: int | None = None

    def decode(self, line: str) -> ServerSentEvent | None:
        """One line; returns the event a blank line completes."""
        if not line:
            return self._dispatch()
        self._field(line)
        return None

    def decode_lines(self, lines: list[str]) -> list[str]:
        """Many lines; returns the non-empty ``data`` of the events they complete.

        The hot path of a stream: ``data:`` lines are handled inline, everything else
        through the general rules.
        """
        out: list[str] = []
        data = self._data
        for line in lines:
            if line.startswith("data:"):
                data.append(line[6:] if line.startswith(" ", 5) else line[5:])
            elif not line:
                if data:
                    joined = data[0] if len(data) == 1 else "\n".join(data)
                    data.clear()
                    self._event = ""
                    self._retry = None
                    if joined:
                        out.append(joined)
                else:
                    self._event = ""
            else:
                self._field(line)
        return out

    def _field(self, line: str) -> None:
        if line[0] == ":":
            return  # a comment (keep-alives look like this)
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                self._retry = int(value)

    def _dispatch(self) -> ServerSentEvent | None:
        data, event, retry = self._data, self._event, self._retry
        self._event = ""
        self._retry = None
        if not data:
            return None
        joined = "\n".join(data)
        data.clear()  # in place: decode_lines holds the same list
        return ServerSentEvent(joined, event or "message", self._last_id, retry)


class SSEBatcher:
    """Incremental bytes → event data. ``feed`` returns the data of completed events."""

    __slots__ = ("_decoder", "_pending", "_started")

    def __init__(self) -> None:
        self._decoder = SSEDecoder()
        self._pending = b""
        self._started = False  # the first line was seen (a byte-order mark may precede it)

    def feed(self, chunk: bytes) -> list[str]:
        if self._pending:
            chunk = self._pending + chunk
        if b"\r" in chunk:
            # A trailing \r may be the first half of \r\n: keep it for the next read.
            if chunk.endswith(b"\r"):
                self._pending = b"\r"
                chunk = chunk[:-1]
            else:
                self._pending = b""
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            cut = chunk.rfind(b"\n")
            if cut < 0:
                self._pending = chunk + self._pending
                return []
            self._pending = chunk[cut + 1 :] + self._pending
        else:
            cut = chunk.rfind(b"\n")
            if cut < 0:
                self._pending = chunk
                return []
            self._pending = chunk[cut + 1 :]
        # Cutting at a newline never splits a UTF-8 sequence.
        text = chunk[:cut].decode("utf-8", "replace")
        if not self._started:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        return self._decoder.decode_lines(text.split("\n"))

    def close(self) -> list[str]:
        """End of body: a last event not followed by a blank line still counts."""
        out = self.feed(b"\n\n") if self._pending else self.feed(b"\n")
        self._pending = b""
        return out
