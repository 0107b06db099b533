"""Albums: every item is its own update sharing a media_group_id, with no count and no
end signal. The first item's handler waits until ``window`` seconds pass without a new
item, then handles the whole album as one message; later items just join it."""

from __future__ import annotations

import asyncio
import time

from telegram import Message


class _Album:
    __slots__ = ("messages", "last_arrival", "arrived")

    def __init__(self, first: Message) -> None:
        self.messages = [first]
        self.last_arrival = time.monotonic()
        self.arrived = asyncio.Event()


class AlbumGatherer:
    def __init__(self, window: float) -> None:
        self.window = window
        self._open: dict[tuple[int, str], _Album] = {}

    async def gather(self, message: Message) -> list[Message] | None:
        """All items of the album once it is complete (for its first item), else None."""
        key = (message.chat.id, str(message.media_group_id))
        album = self._open.get(key)
        if album is not None:
            album.messages.append(message)
            album.last_arrival = time.monotonic()
            album.arrived.set()
            return None
        album = self._open[key] = _Album(message)
        try:
            while (remaining := album.last_arrival + self.window - time.monotonic()) > 0:
                album.arrived.clear()
                try:
                    await asyncio.wait_for(album.arrived.wait(), remaining)
                except TimeoutError:
                    pass
        finally:
            del self._open[key]
        return sorted(album.messages, key=lambda m: m.message_id)
