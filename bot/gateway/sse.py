"""Server-sent events, read in batches.

Awaiting the HTTP stream once per SSE event costs a lot of CPU per token. Instead we take
whatever bytes the network has delivered, split them into lines ourselves and run every
complete line through httpx-sse's spec-compliant ``SSEDecoder``; each network read yields
the ``data`` of all the events it completed, as one list.
"""
from __future__ import annotations

# SSEDecoder is not re-exported by httpx_sse; the version is pinned (<0.5) in pyproject.
from httpx_sse._decoders import SSEDecoder


class SSEBatcher:
    """Incremental bytes → event data. ``feed`` returns the data of completed events."""

    __slots__ = ("_decoder", "_pending")

    def __init__(self) -> None:
        self._decoder = SSEDecoder()
        self._pending = b""

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
            self._pending = chunk[cut + 1:] + self._pending
        else:
            cut = chunk.rfind(b"\n")
            if cut < 0:
                self._pending = chunk
                return []
            self._pending = chunk[cut + 1:]
        # Cutting at a newline never splits a UTF-8 sequence.
        lines = chunk[:cut].decode("utf-8", "replace").split("\n")
        decode = self._decoder.decode
        out: list[str] = []
        for line in lines:
            event = decode(line)
            if event is not None and event.data:
                out.append(event.data)
        return out

    def close(self) -> list[str]:
        """End of body: a last event not followed by a blank line still counts."""
        out = self.feed(b"\n\n") if self._pending else self.feed(b"\n")
        self._pending = b""
        return out
