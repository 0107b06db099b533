"""`bot chat` in a real pseudo-terminal against the fake gateway: what a person at the
keyboard sees and can do (tests/tty.py emulates the terminal; nothing here sleeps)."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.store.db import Database
from bot.store.models import Message, Turn
from tests.fakes.gateway import Answer, FakeGateway, FakeToolCall, last_user_text
from tests.processes import bot_env, start_bot
from tests.tty import ALT_ENTER, CTRL_C, CTRL_D, ENTER, ESC, TAB, UP, Tty, bot_tty

LONG = "Part one of a long answer. " * 3 + "\n\nPart two goes on and on. " * 3


@pytest.fixture
def env(fake_gateway: FakeGateway, database_url: str, tmp_path: Path) -> dict[str, str]:
    return bot_env(
        BYTESPIKE_API_KEY="test-key",
        BYTESPIKE_BASE_URL=fake_gateway.base_url,
        DATABASE_URL=database_url,
        HOME=str(tmp_path),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        BOT_RETRY_BASE_DELAY="0.01",
        BOT_RETRY_MAX_DELAY="0.05",
        BOT_CHECKPOINT_INTERVAL="0",
    )


@pytest.fixture
async def terminals() -> AsyncIterator[list[Tty]]:
    started: list[Tty] = []
    yield started
    for tty in started:
        tty.kill()


async def chat(terminals: list[Tty], env: dict[str, str], *args: str) -> Tty:
    tty = bot_tty("--user", "tester", *args, env=env)
    terminals.append(tty)
    await tty.shows("Ctrl-D quits")
    return tty


async def rows(url: str, query) -> list:
    db = Database(url)
    try:
        async with db.read() as conn:
            return list((await conn.execute(query)).all())
    finally:
        await db.dispose()


async def turn_states(url: str, expected: list[str], timeout: float = 15.0) -> None:
    """Wait until the stored turns' states are ``expected`` (an answer is shown before it is saved)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (states := [r.status for r in await rows(url, select(Turn.status).order_by(Turn.id))]) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"turns are {states}, not {expected}"
        await asyncio.sleep(0.05)


def held(text: str = LONG) -> tuple[Answer, asyncio.Event]:
    """An answer that shows its first words, then waits until the event is set."""
    go_on = asyncio.Event()
    return Answer(text=text, chunk_size=12, pause_after=3, wait_for=go_on), go_on


def in_order(seen: str, *parts: str) -> bool:
    """Each of ``parts`` is shown, each after the one before."""
    at = 0
    for part in parts:
        found = seen.find(part, at)
        assert found >= 0, f"{part!r} is not shown after what came before it:\n{seen}"
        at = found + len(part)
    return True


async def test_markdown_is_rendered_behind_labels(
    terminals: list[Tty], env: dict[str, str], fake_gateway: FakeGateway
) -> None:
    fake_gateway.script(Answer(text="**You** asked:\n\n- `one`\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"))
    tty = await chat(terminals, env)
    tty.line("hello")
    await tty.shows("• two")
    seen = tty.text()
    assert "you› hello" in seen and "bot› You asked:" in seen  # labelled, rendered: no ** left
    assert "**" not in seen and "`" not in seen and "|---" not in seen
    tty.type(CTRL_D)
    assert await tty.exit_status() == 0


async def test_a_line_typed_while_an_answer_streams_is_queued_as_its_own_turn(
    terminals: list[Tty], env: dict[str, str], fake_gateway: FakeGateway
) -> None:
    first, go_on = held()
    fake_gateway.script(first, Answer(text="Second answer."))
    tty = await chat(terminals, env)
    tty.line("first question")
    await tty.shows("Part one")
    tty.line("second question")
    await tty.shows("second question  (queued")
    assert len(fake_gateway.requests) == 1  # it waits for the first answer
    go_on.set()
    await tty.until(lambda seen: "bot› Second answer." in seen and "(queued" not in seen)
    seen = tty.text()
    assert in_order(
        seen, "you› first question", "bot› Part one", "Part two", "you› second question", "bot› Second answer."
    )
    assert last_user_text(fake_gateway.requests[1].body) == "second question"
    tty.type(CTRL_D)
    assert await tty.exit_status() == 0


@pytest.mark.parametrize("how", ["esc", "/stop"])
async def test_esc_or_slash_stop_stops_the_answer(
    terminals: list[Tty], env: dict[str, str], database_url: str, fake_gateway: FakeGateway, how: str
) -> None:
    fake_gateway.script(held()[0], Answer(text="Next answer."))
    tty = await chat(terminals, env)
    tty.line("tell me a story")
    await tty.shows("Part one")
    if how == "esc":
        tty.type(ESC)
    else:
        tty.line("/stop")
    await tty.shows("(stopped)")
    await turn_states(database_url, ["stopped"])
    tty.line("and now?")  # the terminal goes on as usual
    await tty.shows("bot› Next answer.")
    tty.type(CTRL_D)
    assert await tty.exit_status() == 0


async def test_ctrl_c_stops_the_answer_and_a_second_one_quits(
    terminals: list[Tty], env: dict[str, str], database_url: str, fake_gateway: FakeGateway
) -> None:
    fake_gateway.script(held()[0])
    tty = await chat(terminals, env)
    tty.line("tell me a story")
    await tty.shows("Part one")
    tty.type(CTRL_C)
    await tty.shows("(stopped)")
    assert tty.child.isalive()
    tty.type(CTRL_C)
    assert await tty.exit_status() == 0
    await turn_states(database_url, ["stopped"])


async def test_quitting_mid_answer_leaves_nothing_streaming(
    terminals: list[Tty], env: dict[str, str], database_url: str, fake_gateway: FakeGateway
) -> None:
    fake_gateway.script(held()[0])
    tty = await chat(terminals, env)
    tty.line("tell me a story")
    await tty.shows("Part one")
    tty.line("a line typed meanwhile")
    await tty.shows("(queued")
    tty.type(CTRL_D)  # on an empty line: quit at once
    assert await tty.exit_status() == 0
    assert [r.status for r in await rows(database_url, select(Turn.status))] == ["stopped"]
    users = await rows(database_url, select(Message.status).where(Message.role == "user").order_by(Message.seq))
    assert [r.status for r in users] == ["answered", "context"]  # never answered by a later start
    assert "not answered" in tty.text()
    assert "Part one" in tty.text().split("(queued")[-1] and "(stopped)" in tty.text()  # written out on leaving
    assert len(fake_gateway.requests) == 1


async def test_history_is_kept_across_runs(
    terminals: list[Tty], env: dict[str, str], fake_gateway: FakeGateway
) -> None:
    tty = await chat(terminals, env)
    tty.line("a line worth remembering")
    await tty.shows("bot› echo: a line worth remembering")
    tty.type(CTRL_D)
    assert await tty.exit_status() == 0
    again = await chat(terminals, env)
    again.type(UP)
    await again.until(lambda _seen: "you› a line worth remembering" in again.screen_text())
    again.type(CTRL_C)  # clears the line (Ctrl-D on a line with text deletes, as in a shell)
    await again.until(lambda _seen: "you› a line worth remembering" not in again.screen_text())
    again.type(CTRL_D)
    assert await again.exit_status() == 0


async def test_pasted_lines_and_alt_enter_make_one_message(
    terminals: list[Tty], env: dict[str, str], fake_gateway: FakeGateway
) -> None:
    tty = await chat(terminals, env)
    tty.type("\x1b[200~first line\rsecond line\x1b[201~")  # a bracketed paste, as terminals send it
    await tty.until(lambda _seen: "second line" in tty.screen_text())
    tty.type(ALT_ENTER + "third line")
    await tty.until(lambda _seen: "third line" in tty.screen_text())
    assert fake_gateway.requests == []  # no newline sent anything
    tty.type(ENTER)
    await tty.shows("bot› echo: first line")
    assert last_user_text(fake_gateway.last.body) == "first line\nsecond line\nthird line"
    tty.type(CTRL_D)
    assert await tty.exit_status() == 0


async def test_an_unknown_command_is_answered_and_costs_nothing(
    terminals: list[Tty], env: dict[str, str], fake_gateway: FakeGateway
) -> None:
    tty = await chat(terminals, env)
    tty.line("/stlye xiaohongshu")
    await tty.shows("I don't know the command /stlye. Did you mean /style")
    assert fake_gateway.requests == []
    tty.type(CTRL_D)
    assert await tty.exit_status() == 0


async def test_tab_completes_commands_and_style_ids(
    terminals: list[Tty], env: dict[str, str], fake_gateway: FakeGateway
) -> None:
    tty = await chat(terminals, env)
    tty.type("/sty")
    await tty.shows("/style  List, set or clear a copywriting style")  # the menu, as you type
    tty.type(TAB)
    await tty.until(lambda _seen: "you› /style" in tty.screen_text())
    tty.type(" xiaoh")
    await tty.until(lambda _seen: "xiaohongshu" in tty.screen_text().split("you› /style xiaoh", 1)[-1])
    tty.type(TAB)
    await tty.until(lambda _seen: "you› /style xiaohongshu" in tty.screen_text())
    tty.type("\r")
    await tty.shows("Style set for this conversation")
    tty.type(CTRL_D)
    assert await tty.exit_status() == 0


async def test_regenerate_and_feedback_from_the_keyboard(
    terminals: list[Tty], env: dict[str, str], database_url: str, fake_gateway: FakeGateway
) -> None:
    fake_gateway.script(Answer(text="First try."), Answer(text="Second try."))
    tty = await chat(terminals, env)
    tty.line("/regen")
    await tty.shows("There is no answer to regenerate yet.")
    tty.line("write a slogan")
    await tty.shows("bot› First try.")
    tty.line("/regen")
    await tty.shows("bot› Second try.")
    assert last_user_text(fake_gateway.requests[1].body) == "write a slogan"
    await tty.until(lambda _seen: "Esc to stop" not in tty.screen_text())  # written in full
    tty.line("/good")
    await tty.shows("Thanks for the feedback!")
    feedback = await rows(database_url, select(Turn.feedback).order_by(Turn.id))
    assert [r.feedback for r in feedback] == [None, 1]
    tty.type(CTRL_D)
    assert await tty.exit_status() == 0


async def test_an_approval_offers_its_buttons_and_press_answers_it_mid_answer(
    terminals: list[Tty], env: dict[str, str], fake_gateway: FakeGateway, tmp_path: Path
) -> None:
    from tests.fakes.mcp_servers import stdio_entry

    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"cms": stdio_entry("cms")}}))
    fake_gateway.script(
        Answer(text="", tool_calls=[FakeToolCall("cms__publish_page", {"title": "Autumn"})]),
        Answer(text="Published the autumn page."),
    )
    tty = await chat(terminals, {**env, "BOT_MCP_CONFIG": str(config), "BOT_ADMINS": "console:tester"})
    tty.line("publish the autumn page")
    await tty.shows("▸ /press 1 ✅ Approve · /press 2 ✖ Deny")
    await tty.until(lambda _seen: "Esc to stop" in tty.screen_text())  # the answer waits for the tap
    tty.type("/press ap")
    await tty.until(lambda _seen: "approve" in tty.screen_text().split("you› /press ap", 1)[-1])  # offered
    tty.type(TAB)
    await tty.until(lambda _seen: "you› /press approve" in tty.screen_text())
    tty.type(ENTER)
    await tty.shows("bot› Published the autumn page.")
    seen = tty.text()
    assert in_order(
        seen, "Approval needed", "/press 1 ✅ Approve", "you› /press approve", "Approved: running it.", "Approved by"
    )
    assert "(queued" not in seen
    tool = [m["content"] for m in fake_gateway.requests[1].body["messages"] if m["role"] == "tool"]
    assert "published 'Autumn'" in tool[0]
    tty.line("/press approve")  # settled: nothing is offered any more
    await tty.shows("Nothing to press: no message offers buttons now.")
    tty.type(CTRL_D)
    assert await tty.exit_status() == 0


async def test_a_gateway_that_is_down_is_one_clear_message_and_logs_go_to_a_file(
    terminals: list[Tty], env: dict[str, str], tmp_path: Path
) -> None:
    down = {**env, "BYTESPIKE_BASE_URL": "http://127.0.0.1:9", "BOT_MAX_RETRIES": "1"}
    tty = await chat(terminals, down)
    assert "Logs go to ~/state/chatbot/chat.log" in tty.text()
    tty.line("hello?")
    await tty.shows("I couldn't reach the model service")
    await tty.shows("warning(s) logged")  # one dim line says the log has more
    seen = tty.text()
    assert "bot› I couldn't reach" in seen and "WARNING" not in seen and "Traceback" not in seen
    log = (tmp_path / "state" / "chatbot" / "chat.log").read_text()
    assert "WARNING" in log and "test-key" not in log
    tty.type(CTRL_D)
    assert await tty.exit_status() == 0


async def test_conversation_names_keep_their_own_threads(
    terminals: list[Tty], env: dict[str, str], fake_gateway: FakeGateway
) -> None:
    tty = await chat(terminals, env, "--conversation", "drafts")
    assert "conversation “drafts”" in tty.text()
    tty.line("only in drafts")
    await tty.shows("bot› echo: only in drafts")
    tty.type(CTRL_D)
    assert await tty.exit_status() == 0
    other = await chat(terminals, env)
    other.line("elsewhere")
    await other.shows("bot› echo: elsewhere")
    users = [m["content"] for m in fake_gateway.last.body["messages"] if m["role"] == "user"]
    assert users == ["elsewhere"]
    other.type(CTRL_D)
    assert await other.exit_status() == 0


# --- piped runs ---
async def piped(env: dict[str, str], stdin: str, *args: str) -> tuple[int, str, str]:
    proc = await start_bot("chat", "--user", "tester", *args, env=env, cwd=Path.cwd())
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout=60)
    return proc.returncode, out.decode(), err.decode()


async def test_piped_exit_status_says_whether_answers_failed_or_were_refused(
    env: dict[str, str], fake_gateway: FakeGateway
) -> None:
    code, out, _ = await piped({**env, "BYTESPIKE_API_KEY": "rejected-key"}, "hello\n", "--conversation", "a")
    assert code == 1 and "API key was rejected" in out
    code, out, _ = await piped(env, "hello\n/stlye x\n", "--conversation", "b")
    assert code == 1 and out.splitlines()[0] == "echo: hello"  # an unknown command fails a script too
    code, out, _ = await piped({**env, "BOT_QUOTA_USER_DAILY": "1 tokens"}, "one\ntwo\n", "--conversation", "c")
    assert code == 3, out  # the second line is refused: the first used the day's allowance
    code, out, _ = await piped(env, "all good\n", "--conversation", "d")
    assert code == 0 and out == "echo: all good\n"


async def test_piped_new_starts_over_without_a_word(env: dict[str, str], fake_gateway: FakeGateway) -> None:
    assert (await piped(env, "remember green tea\n"))[0] == 0
    code, out, _ = await piped(env, "what do we sell?\n", "--new")
    assert code == 0 and out == "echo: what do we sell?\n"  # only the answer: no notice about /new
    users = [m["content"] for m in fake_gateway.last.body["messages"] if m["role"] == "user"]
    assert users == ["what do we sell?"]


async def test_ctrl_c_in_a_pipe_stops_the_answer_and_exits_130(
    env: dict[str, str], database_url: str, fake_gateway: FakeGateway
) -> None:
    fake_gateway.script(held()[0])
    proc = await start_bot("chat", "--user", "tester", env=env, cwd=Path.cwd())
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"tell me a story\n")
    await proc.stdin.drain()
    assert (await asyncio.wait_for(proc.stdout.readuntil(b"Part one"), 30)).endswith(b"Part one")
    proc.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 130, err
    assert [r.status for r in await rows(database_url, select(Turn.status))] == ["stopped"]
    assert "Traceback" not in err.decode()


async def test_one_question_on_the_command_line_with_a_file_piped_in(
    env: dict[str, str], fake_gateway: FakeGateway
) -> None:
    code, out, err = await piped(env, "line one\nline two\n", "summarise", "this")
    assert code == 0, err
    assert last_user_text(fake_gateway.last.body) == "summarise this\n\nline one\nline two"
    assert out == "echo: summarise this\n\nline one\nline two\n"
