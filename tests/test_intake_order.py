"""The one door keeps arrival order for everything the bot says outside an answer: notices
``build`` returns (a file it cannot read, a sticker) and command replies come out in the order
their events arrived, whatever each event's build (downloads) took."""

from __future__ import annotations

import asyncio

from bot.platform.inbox import Arrival, Notice
from bot.platform.messages import Author, ConversationKey, IncomingMessage
from tests.platforms import inbox_for
from tests.polling import eventually
from tests.surfaces import RecordingSurface

KEY = ConversationKey("console", "local", "order")
ALICE = Author("alice", "Alice")


async def test_notices_and_replies_keep_arrival_order_whatever_their_builds_take(runtime, fake_gateway) -> None:
    inbox = inbox_for(runtime, "console")
    surface = RecordingSurface()
    released = asyncio.Event()
    built: list[str] = []

    def notice(text: str, *, slow: bool):
        async def build() -> Notice:
            if slow:
                await released.wait()  # a download that takes long
            built.append(text)
            return Notice(text)

        return build

    async def help_command() -> IncomingMessage:
        built.append("/help")
        return IncomingMessage(key=KEY, author=ALICE, text="/help", message_id="m3")

    tasks = [
        inbox.receive(Arrival(KEY, "e1", ALICE, surface), notice("I can't read “a.zip”.", slow=True)),
        inbox.receive(Arrival(KEY, "e2", ALICE, surface), notice("I can't read “b.zip”.", slow=False)),
        inbox.receive(Arrival(KEY, "e3", ALICE, surface), help_command),
        inbox.receive(Arrival(KEY, "e4", ALICE, surface), notice("I can't handle a sticker.", slow=False)),
    ]
    await eventually(lambda: len(built) == 3)  # every later event is built; the first still downloads
    assert surface.texts == []  # and nothing they say overtakes it
    released.set()
    await asyncio.gather(*tasks)
    assert surface.texts[:2] == ["I can't read “a.zip”.", "I can't read “b.zip”."]
    assert "/new" in surface.texts[2] and surface.texts[3] == "I can't handle a sticker."
    assert fake_gateway.requests == []
