"""Features add to every turn's prompt through ``Extension.prompt``: stable text after the
system prompt and few-shot examples right after it (the cached prefix, byte for byte the
same every turn), volatile text on the newest user message only."""

from __future__ import annotations

import json

from bot.core.kinds import Extension, PromptAddition
from bot.platform.messages import Author, ConversationKey, IncomingMessage
from tests.fakes.gateway import Answer
from tests.surfaces import RecordingSurface

KEY = ConversationKey("console", "local", "hooks")
EXAMPLES = ({"role": "user", "content": "[example] hi"}, {"role": "assistant", "content": "Meow! 喵～"})


async def mascot(conversation, kind: str, history: list) -> PromptAddition:
    asked = [m.text for m in history if m.role == "user"]
    return PromptAddition(
        system="You are Mimi, the brand's cat mascot.",
        examples=EXAMPLES,
        newest=f"(turn {len(asked)}: stay in character)",
    )


async def test_additions_keep_the_prefix_stable_and_volatile_text_on_the_newest_message(service, fake_gateway):
    service.extend(Extension(prompt=(mascot,)))
    surface = RecordingSurface()
    for n, text in enumerate(("hello", "what do you sell?", "bye"), 1):
        fake_gateway.script(Answer(text=f"answer {n}", reasoning="ok"))
        await service.handle(IncomingMessage(key=KEY, author=Author("u", "U"), text=text, message_id=str(n)), surface)
    bodies = [r.body["messages"] for r in fake_gateway.requests]
    prefixes = {json.dumps(b[:3], ensure_ascii=False) for b in bodies}
    assert len(prefixes) == 1  # system + examples: identical bytes every turn
    first = bodies[0]
    assert first[0]["role"] == "system" and first[0]["content"].endswith("You are Mimi, the brand's cat mascot.")
    assert first[1:3] == list(EXAMPLES)
    last = bodies[-1]
    assert last[-1]["content"] == "bye\n\n(turn 3: stay in character)"
    # Earlier turns are replayed as they were asked: the volatile text never stays behind.
    assert [m["content"] for m in last[3:-1]] == ["hello", "answer 1", "what do you sell?", "answer 2"]
