"""What the user sees when the gateway misbehaves, end to end through the real core
(``ChatService.handle``), the real gateway client and the fake gateway."""

from __future__ import annotations

from bot.platform.messages import Author, ConversationKey, IncomingMessage
from tests.fakes.gateway import Answer
from tests.surfaces import RecordingSurface

KEY = ConversationKey("console", "local", "bob")
REFUSAL = "I'm sorry, but I can't help with that."


def msg(text: str) -> IncomingMessage:
    return IncomingMessage(key=KEY, author=Author("bob", "Bob"), text=text, message_id=f"m-{text[:10]}")


async def test_a_refusal_is_shown_as_the_answer(service, fake_gateway) -> None:
    fake_gateway.script(Answer(refusal=REFUSAL, chunk_size=6))
    surface = RecordingSurface()
    await service.handle(msg("something the model refuses"), surface)
    assert surface.texts == [REFUSAL]
    assert surface.messages[surface.order[-1]].final
    assert "empty answer" not in surface.transcript


async def test_garbage_from_the_gateway_is_reported_not_shown_as_an_empty_answer(service, fake_gateway) -> None:
    garbage = Answer(raw_events=["<html>502 bad gateway</html>", {"choices": "?"}, [1, 2]])
    fake_gateway.script(garbage, garbage, garbage)  # every attempt
    surface = RecordingSurface()
    await service.handle(msg("hello?"), surface)
    assert "sent an answer I couldn't read" in surface.transcript
    assert "empty answer" not in surface.transcript
