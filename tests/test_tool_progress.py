"""Tool calls shown while they run and when they end, on Telegram (a line in the draft or the
answer's message) and in the terminal (a line per change). Slack's task_update timeline is
tested with the other Slack tool tests (tests/test_slack_copywriting.py). The tool here waits
until the test has seen its progress, so nothing depends on timing."""

from __future__ import annotations

import asyncio
import io

from adapters.console.chat import ConsoleAdapter
from adapters.console.live import LiveDisplay
from adapters.console.surface import ConsoleSurface, PlainDisplay
from bot.platform.messages import Author, ConversationKey
from bot.tools import Tool
from tests.fakes.gateway import Answer, FakeToolCall
from tests.platforms import connect
from tests.polling import eventually
from tests.telegram_harness import ALICE, GROUP, answered, no_limit_broken

OBJ = {"type": "object", "properties": {}}


def _waiting_tool(service, released: asyncio.Event) -> None:
    async def market_size() -> str:
        await released.wait()
        return "The tea market grew 8% last year."

    service.tools.add(Tool("market_size", "The tea market's size.", OBJ, market_size, label="market size"))


def _script(gateway) -> None:
    gateway.script(
        Answer(text="", reasoning="look it up", tool_calls=[FakeToolCall("market_size", {}, id="m1")]),
        Answer(text="It grew 8% last year.", reasoning="ok"),
    )


async def test_telegram_private_chat_shows_the_tool_in_the_draft(start_bot, tg, fake_gateway) -> None:
    bot = await start_bot()
    released = asyncio.Event()
    _waiting_tool(bot.service, released)
    _script(fake_gateway)
    tg.send_user_message(ALICE["id"], ALICE, "how big is the tea market?")

    def drafts() -> list[str]:
        return [c.params["text"] for c in tg.calls_to("sendMessageDraft", ALICE["id"]) if c.ok]

    await eventually(lambda: "🔧 market size ⏳" in drafts())
    released.set()
    [final] = await answered(tg, ALICE["id"])
    assert final.text == "It grew 8% last year."  # the final message has no steps line
    assert any(d.endswith("🔧 market size ✓") for d in drafts())  # the line said it ended well
    assert len(tg.bot_messages(ALICE["id"])) == 1
    no_limit_broken(tg)


async def test_telegram_group_shows_the_tool_in_the_answers_message(start_bot, tg, fake_gateway) -> None:
    bot = await start_bot()
    released = asyncio.Event()
    _waiting_tool(bot.service, released)
    _script(fake_gateway)
    text = f"@{tg.username} how big is the tea market?"
    tg.send_user_message(GROUP, ALICE, text, entities=[tg.mention_entity(text)])
    await eventually(lambda: [m for m in tg.bot_messages(GROUP) if m.text == "🔧 market size ⏳"])
    released.set()
    [final] = await answered(tg, GROUP)
    # The message that showed the line became the answer: one message, the line gone at the end.
    assert len(tg.bot_messages(GROUP)) == 1
    assert final.text == "It grew 8% last year."
    assert not tg.calls_to("sendMessageDraft")
    no_limit_broken(tg)


async def test_the_terminal_prints_a_line_per_step(runtime, fake_gateway) -> None:
    released = asyncio.Event()
    _waiting_tool(runtime.service, released)
    _script(fake_gateway)
    adapter = connect(runtime, "console")
    assert isinstance(adapter, ConsoleAdapter)
    out = io.StringIO()
    adapter.bind(LiveDisplay(out, width=lambda: 80, color=False))
    await adapter.start()
    key = ConversationKey("console", "local", "dev")
    task = adapter.send(key, Author("dev", "dev"), "how big is the tea market?")
    await eventually(lambda: "⚙ market size: running" in out.getvalue())
    released.set()
    await task
    await adapter.drain()
    shown = out.getvalue()
    assert "⚙ market size: done" in shown
    assert shown.index("⚙ market size: running") < shown.index("⚙ market size: done") < shown.index("It grew 8%")


async def test_the_terminal_surface_says_when_a_tool_failed() -> None:
    from bot.platform.surface import Step

    out = io.StringIO()
    surface = ConsoleSurface(LiveDisplay(out, width=lambda: 80, color=False))
    assert await surface.show_steps(1, [Step("a", "cms · search", "running")])
    assert await surface.show_steps(1, [Step("a", "cms · search", "error", "did not answer within 5 seconds")])
    assert [line.strip() for line in out.getvalue().splitlines() if line.strip()][
        -1
    ] == "⚙ cms · search: failed (did not answer within 5 seconds)"
    piped = ConsoleSurface(PlainDisplay(io.StringIO()))  # piped output shows the answer only
    assert not await piped.show_steps(1, [Step("a", "cms · search", "running")])
