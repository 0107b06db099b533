"""`bot chat`: a real subprocess talking to the fake gateway, piped like a user would."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.console.chat import ConsoleAdapter, run_chat
from adapters.console.settings import ConsoleSettings
from tests.fakes.gateway import Answer, FakeToolCall
from tests.polling import eventually
from tests.processes import bot_env, start_bot


async def bot_chat(stdin: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    proc = await start_bot("chat", "--user", "tester", env=bot_env(**env), cwd=cwd)
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout=60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_piped_chat_answers_each_line_hides_reasoning_and_remembers(
    fake_gateway, tmp_path: Path, database_url: str
) -> None:
    env = {"BYTESPIKE_API_KEY": "test-key", "BYTESPIKE_BASE_URL": fake_gateway.base_url, "DATABASE_URL": database_url}
    fake_gateway.script(
        Answer(text="你好！我是你的助手。", reasoning="用户在打招呼，我要友好。", split_tags=True),
        Answer(text="Noted: your product is green tea.", reasoning="remember it", reasoning_style="inline_no_open"),
    )
    code, out, err = await bot_chat("你好\nour product is green tea\n", env, tmp_path)
    assert code == 0, err
    assert out.splitlines() == ["你好！我是你的助手。", "Noted: your product is green tea."]
    assert "用户在打招呼" not in out and "remember it" not in out
    # A new process on the same database continues the same conversation.
    code, out, err = await bot_chat("what do we sell?\n", env, tmp_path)
    assert code == 0, err
    users = [m["content"] for m in fake_gateway.requests[-1].body["messages"] if m["role"] == "user"]
    assert users == ["你好", "our product is green tea", "what do we sell?"]


async def test_failing_gateway_is_answered_clearly(fake_gateway, tmp_path: Path, database_url: str) -> None:
    env = {"BYTESPIKE_API_KEY": "wrong-key", "BYTESPIKE_BASE_URL": fake_gateway.base_url, "DATABASE_URL": database_url}
    code, out, err = await bot_chat("hello\n", env, tmp_path)
    assert code == 1  # a script can tell: the answer failed (docs/terminal.md lists the codes)
    assert "API key was rejected" in out
    assert "wrong-key" not in out + err
    assert "Traceback" not in err


def console(runtime) -> ConsoleAdapter:
    adapter = runtime.adapter(ConsoleAdapter, ConsoleSettings.load(_env_file=None))
    assert isinstance(adapter, ConsoleAdapter)
    return adapter


async def test_attach_and_new_in_the_console(runtime, fake_gateway, tmp_path: Path) -> None:
    doc = tmp_path / "brief.txt"
    doc.write_text("产品：有机绿茶，产地杭州。", encoding="utf-8")
    out = io.StringIO()
    lines = f"/attach {doc}\nsummarise the brief\n/new\nhello again\n/attach {tmp_path / 'missing.png'}\n"
    await run_chat(console(runtime), stdin=io.StringIO(lines), stdout=out, user="tester")
    first_prompt = str(fake_gateway.requests[0].body["messages"])
    assert "有机绿茶" in first_prompt
    assert "new conversation" in out.getvalue().lower()
    users = [m for m in fake_gateway.requests[-1].body["messages"] if m["role"] == "user"]
    assert len(users) == 1 and users[0]["content"] == "hello again"
    assert "no such file" in out.getvalue()


async def test_a_pdf_attached_in_the_console_is_summarised(runtime, fake_gateway, tmp_path: Path) -> None:
    from tests.test_documents import make_pdf

    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(make_pdf(["Quarterly revenue grew 12 percent.", "Churn fell to 3 percent."]))
    fake_gateway.script(Answer(text="Revenue +12%, churn 3%.", reasoning="summarise"))
    out = io.StringIO()
    await run_chat(console(runtime), stdin=io.StringIO(f"/attach {pdf}\nsummarise this report\n"), stdout=out, user="t")
    prompt = fake_gateway.requests[-1].body["messages"][-1]["content"]
    assert "Quarterly revenue grew 12 percent." in prompt and "Churn fell to 3 percent." in prompt
    assert "Revenue +12%, churn 3%." in out.getvalue()


async def test_commands_offer_completions_through_the_inbox(runtime) -> None:
    from adapters.console.chat import conversation_key

    inbox = console(runtime).inbox
    key = conversation_key("tester")
    assert await inbox.complete(key, "style", "xiao") == ["xiaohongshu"]
    assert {"off", "xiaohongshu"} <= set(await inbox.complete(key, "style", ""))
    assert await inbox.complete(key, "style", "xiaohongshu ") == []  # one argument only
    assert await inbox.complete(key, "refine", "2 sho") == ["shorter"]
    assert await inbox.complete(key, "help", "") == [] and await inbox.complete(key, "nosuch", "x") == []


def test_finished_blocks_reach_the_scrollback_and_what_waits_stays_live() -> None:
    from adapters.console.live import LiveDisplay
    from bot.platform import Ending, Write

    out = io.StringIO()
    display = LiveDisplay(out, width=lambda: 60, color=False)
    display.user_line("hi")
    display.show("1", "First paragraph.\n\nSecond", Write(1))
    assert "bot› First paragraph." in out.getvalue() and "Second" not in out.getvalue()
    assert display.answering and "Second" in display.live_text(20)
    display.user_line("typed meanwhile", queued=True)
    display.show("2", "A notice.", Write(0, final=True, notice=True))
    assert "typed meanwhile" not in out.getvalue() and "A notice" not in out.getvalue()  # behind the answer
    assert "typed meanwhile  (queued" in display.live_text(20)
    display.show("1", "First paragraph.\n\nSecond paragraph.", Write(1, final=True, ending=Ending.ANSWERED))
    shown = out.getvalue()
    at = [
        shown.index(s)
        for s in ("you› hi", "bot› First paragraph.", "Second paragraph.", "you› typed meanwhile", "bot› A notice.")
    ]
    assert at == sorted(at) and "(queued" not in shown
    assert display.live_text(20) == "" and not display.answering


def test_an_answer_rewritten_at_the_end_is_shown_again_whole() -> None:
    from adapters.console.live import LiveDisplay
    from bot.platform import Write

    out = io.StringIO()
    display = LiveDisplay(out, width=lambda: 60, color=False)
    display.show("1", "Draft one.\n\nmore", Write(1))
    display.show("1", "**Option 1**\n\nFinal copy.", Write(1, final=True))
    assert out.getvalue().count("Draft one.") == 1 and "bot› Option 1" in out.getvalue()
    assert "Final copy." in out.getvalue() and "**" not in out.getvalue()


async def test_a_file_the_bot_sends_is_saved_beside_and_its_path_said(runtime, tmp_path: Path) -> None:
    from adapters.console.chat import ConsoleAdapter
    from adapters.console.surface import PlainDisplay

    adapter = runtime.adapter(ConsoleAdapter, ConsoleSettings.load(_env_file=None, files_dir=str(tmp_path / "out")))
    assert isinstance(adapter, ConsoleAdapter)
    out = io.StringIO()
    surface = adapter.bind(PlainDisplay(out))
    await surface.send_file("Mochi.json", b"{}", "application/json", "Mochi's card")
    await surface.send_file("Mochi.json", b"[]", "application/json")
    assert (tmp_path / "out" / "Mochi.json").read_bytes() == b"{}"
    assert (tmp_path / "out" / "Mochi (2).json").read_bytes() == b"[]"
    assert out.getvalue().splitlines() == [
        f"Mochi's card: saved to {tmp_path / 'out' / 'Mochi.json'}",
        f"saved {tmp_path / 'out' / 'Mochi (2).json'}",
    ]


def test_markdown_keeps_line_breaks_and_angle_brackets_as_the_chats_do() -> None:
    from adapters.console.render import render_markdown

    shown = render_markdown("Commands:\n/copy [style] <brief> — copy\n\n**bold** `x`", 60, color=False)
    assert shown.splitlines() == ["Commands:", "/copy [style] <brief> — copy", "", "bold x"]


# --- buttons a feature offers (an admin's approval of an MCP tool): /press ---
def _from_the_tool(body: dict) -> Answer:
    """The model's follow-up: it says what the tool's result said (or that there was none)."""
    import re

    messages = body["messages"]
    asked = max(i for i, m in enumerate(messages) if m["role"] == "user")
    results = [m["content"] for m in messages[asked:] if m["role"] == "tool"]
    said = re.sub(r"<[^>]*>", "", results[-1]).strip() if results else "no tool ran"
    return Answer(text=f"The CMS says: {said}", reasoning="report the result")


@pytest.fixture
async def approvals(make_settings, fake_gateway, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await approvals(user)``: ``user``'s conversation in the interactive terminal's view
    (what it prints, as ``LiveDisplay`` draws it without colours), on a runtime whose MCP
    server ``cms`` has a destructive ``publish_page``; alice is the admin. The model calls
    that tool for the first line, then answers from its result."""
    import json

    from adapters.console.chat import Conversation, conversation_key
    from adapters.console.live import LiveDisplay
    from bot.platform import Author
    from bot.process.runtime import build_runtime
    from tests.fakes.mcp_servers import stdio_entry

    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"cms": stdio_entry("cms")}}))
    made = []

    async def make(user: str, **settings: Any) -> tuple[Conversation, io.StringIO]:
        values = {"BOT_MCP_CONFIG": str(config), "BOT_ADMINS": "console:alice", **settings}
        runtime = await build_runtime(make_settings(**values), migrate=False)
        made.append(runtime)
        assert await runtime.mcp.wait_ready(30)
        adapter = console(runtime)
        out = io.StringIO()
        display = LiveDisplay(out, width=lambda: 100, color=False)
        adapter.bind(display)
        await adapter.start()
        fake_gateway.script(
            Answer(text="", reasoning="publish", tool_calls=[FakeToolCall("cms__publish_page", {"title": "Autumn"})])
        )
        fake_gateway.default = _from_the_tool
        return Conversation(adapter, conversation_key(user), Author(user, user.title()), say=display.note), out

    yield make
    for runtime in made:
        await runtime.close()


OFFER = "▸ /press 1 ✅ Approve · /press 2 ✖ Deny"


async def test_an_admin_approves_a_tool_with_press_while_the_answer_waits(approvals, fake_gateway) -> None:
    chat, out = await approvals("alice")
    chat.handle("publish the autumn page")
    await eventually(lambda: OFFER in out.getvalue())
    shown = out.getvalue()
    assert shown.index("Approval needed") < shown.index(OFFER)  # the line is under the request
    assert chat.waiting and len(fake_gateway.requests) == 1  # the answer waits for the tap
    chat.handle("/press")  # alone: what can be pressed
    assert out.getvalue().count(OFFER) == 2
    chat.handle("/press approve")  # acts now, not queued behind the answer it unblocks
    await chat.adapter.drain()
    shown = out.getvalue()
    assert "Approved: running it." in shown and "✅ Approved by Alice." in shown
    assert "The CMS says: published 'Autumn'" in shown  # the answer used the tool's result
    assert shown.count(OFFER) == 2  # the settled request is shown again without it
    chat.handle("/press 1")
    assert out.getvalue().rstrip().endswith("Nothing to press: no message offers buttons now.")
    assert len(fake_gateway.requests) == 2


async def test_press_deny_or_its_number_keeps_the_tool_from_running(approvals, fake_gateway) -> None:
    chat, out = await approvals("alice")
    chat.handle("publish the autumn page")
    await eventually(lambda: OFFER in out.getvalue())
    chat.handle("/press publish")
    assert "No button “publish” here. " + OFFER in out.getvalue()
    chat.handle("/press 2")
    await chat.adapter.drain()
    shown = out.getvalue()
    assert "Denied: it will not run." in shown and "✖ Denied by Alice." in shown
    assert "The CMS says:" in shown and "published 'Autumn'" not in shown
    tool = [m["content"] for m in fake_gateway.requests[1].body["messages"] if m["role"] == "tool"]
    assert "an admin denied running cms · publish_page" in tool[0]


async def test_only_an_admin_may_press_approve(approvals, fake_gateway) -> None:
    from adapters.console.chat import Conversation
    from bot.platform import Author

    # bob is no admin: in his own conversation nobody could approve, so nothing is offered.
    bob, out = await approvals("bob")
    bob.handle("publish the autumn page")
    await bob.adapter.drain()
    assert "/press" not in out.getvalue() and "no admin is in this private chat" in str(fake_gateway.requests[1].body)
    bob.handle("/press approve")
    assert out.getvalue().rstrip().endswith("Nothing to press: no message offers buttons now.")
    # At alice's terminal, bob's press is refused and the tool keeps waiting for an admin.
    alice, out = await approvals("alice")
    alice.handle("publish the autumn page")
    await eventually(lambda: OFFER in out.getvalue())
    at_alices = Conversation(alice.adapter, alice.key, Author("bob", "Bob"), say=alice.say)
    at_alices.handle("/press approve")
    await eventually(lambda: "Only an admin of this assistant can approve or deny tools." in out.getvalue())
    assert alice.waiting and len(fake_gateway.requests) == 3
    alice.handle("/press approve")
    await alice.adapter.drain()
    assert "published 'Autumn'" in out.getvalue()


async def test_a_piped_press_answers_the_approval_and_prints_no_offer(approvals, fake_gateway) -> None:
    chat, _ = await approvals("alice", BOT_MCP_APPROVAL_TIMEOUT=20)
    out = io.StringIO()
    stdin = io.StringIO("publish the autumn page\n/press approve\nthanks\n")
    started = asyncio.get_running_loop().time()
    code = await run_chat(chat.adapter, stdin=stdin, stdout=out, user="alice")
    assert code == 0 and asyncio.get_running_loop().time() - started < 15  # not after the 20 s wait
    shown = out.getvalue()
    assert "Approval needed" in shown and "/press" not in shown
    assert "Approved: running it." in shown and "The CMS says: published 'Autumn'" in shown
    assert shown.index("published 'Autumn'") < shown.index("The CMS says: no tool ran")  # "thanks", after


async def test_press_reaches_any_features_buttons_by_label(runtime) -> None:
    """A character card file offers Save / Save & use: the terminal knows nothing of
    characters, and the labels still name the buttons."""
    from adapters.console.chat import Conversation, conversation_key
    from adapters.console.live import LiveDisplay
    from bot.platform import Author
    from bot.store.characters import CharacterStore
    from tests.test_characters_cards import CARDS

    adapter = console(runtime)
    out = io.StringIO()
    display = LiveDisplay(out, width=lambda: 100, color=False)
    adapter.bind(display)
    await adapter.start()
    key = conversation_key("alice")
    chat = Conversation(adapter, key, Author("alice", "Alice"), say=display.note)
    chat.handle(f"/attach {CARDS / 'mascot_zh_v3.json'}")
    chat.handle("here is our mascot")
    await adapter.drain()
    assert "▸ /press 1 ✅ Save · /press 2 🎭 Save & use" in out.getvalue()
    chat.handle("/press sa")
    assert "Which one? ▸ /press 1 ✅ Save · /press 2 🎭 Save & use" in out.getvalue()
    chat.handle("/press SAVE & USE")
    await adapter.drain()
    assert "Speaking as **团团**" not in out.getvalue() and "Speaking as 团团" in out.getvalue()
    [saved] = await CharacterStore(runtime.db).usable(key)
    assert saved.name == "团团"
