"""`bot chat`: a real subprocess talking to the fake gateway, piped like a user would."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from adapters.console.chat import ConsoleAdapter, run_chat
from adapters.console.settings import ConsoleSettings
from tests.fakes.gateway import Answer
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
