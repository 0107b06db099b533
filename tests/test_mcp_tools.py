"""Tools from MCP servers end to end: real servers written with the SDK's FastMCP, started by
the tests (``cms`` over stdio, ``analytics`` over streamable HTTP), the real ChatService,
store and gateway client against the fake gateway, and a surface that records what a chat
would show."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.mcp.records import ServerRule
from bot.mcp.untrusted import SYSTEM_NOTE
from bot.platform.controls import Click
from bot.platform.messages import Author, ConversationKey, IncomingMessage
from bot.process.runtime import Runtime, build_runtime
from bot.store.models import ToolCallRecord
from tests.fakes.gateway import Answer, FakeGateway, FakeToolCall
from tests.fakes.mcp_servers import serve_http, stdio_entry
from tests.polling import eventually
from tests.surfaces import RecordingSurface

ADMIN = Author("boss", "Boss")
ALICE = Author("alice", "Alice")
PRIVATE = ConversationKey("console", "local", "alice")
GROUP = ConversationKey("console", "local", "team-room")


class StepSurface(RecordingSurface):
    """A recording surface that also draws tool steps (every update it is given, in order)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.step_updates: list[tuple] = []

    async def show_steps(self, turn_id: int, steps) -> bool:
        self.step_updates.append(tuple((s.title, s.state, s.detail) for s in steps))
        return True


def say(text: str, author: Author = ALICE, key: ConversationKey = PRIVATE) -> IncomingMessage:
    return IncomingMessage(key=key, author=author, text=text, group=key is GROUP)


def tool_messages(gateway: FakeGateway, request: int = 1) -> list[dict]:
    return [m for m in gateway.requests[request].body["messages"] if m["role"] == "tool"]


def offered(gateway: FakeGateway, request: int = 0) -> list[str]:
    return [t["function"]["name"] for t in gateway.requests[request].body.get("tools") or []]


async def calls(runtime: Runtime) -> list[ToolCallRecord]:
    async with runtime.db.read() as conn:
        rows = (await conn.execute(select(ToolCallRecord.__table__).order_by(ToolCallRecord.id))).all()
    return list(rows)


@pytest.fixture
async def analytics_url() -> AsyncIterator[str]:
    async with serve_http() as url:
        yield url


@pytest.fixture
async def mcp_runtime(make_settings, tmp_path: Path, analytics_url: str) -> AsyncIterator[Callable[..., Any]]:
    """``await mcp_runtime(cms={...}, analytics={...}, **settings)``: a runtime whose MCP
    config holds the two servers (entries extended by the keyword dicts), both connected."""
    made: list[Runtime] = []

    async def make(cms: dict | None = None, analytics: dict | None = None, **overrides: Any) -> Runtime:
        servers = {"cms": stdio_entry("cms", **(cms or {})), "analytics": {"url": analytics_url, **(analytics or {})}}
        path = tmp_path / "mcp.json"
        path.write_text(json.dumps({"mcpServers": servers}))
        values = {"BOT_MCP_CONFIG": str(path), "BOT_ADMINS": "console:boss", **overrides}
        runtime = await build_runtime(make_settings(**values), migrate=False)
        made.append(runtime)
        assert await runtime.mcp.wait_ready(30), {n: s.error for n, s in runtime.mcp.servers.items()}
        return runtime

    yield make
    for runtime in made:
        await runtime.close()


async def test_two_tools_of_two_servers_run_in_parallel_and_are_answered_in_one_follow_up(
    mcp_runtime, fake_gateway: FakeGateway
) -> None:
    runtime = await mcp_runtime(cms={"env": {"CMS_SEARCH_DELAY": "0.8"}}, analytics={})
    import os

    os.environ["ANALYTICS_DELAY"] = "0.8"  # the in-process analytics server reads it per call
    try:
        fake_gateway.script(
            Answer(
                text="",
                reasoning="look both up",
                tool_calls=[
                    FakeToolCall("cms__search", {"query": "milk tea"}, id="c1"),
                    FakeToolCall("analytics__report", {"metric": "visits"}, id="c2"),
                ],
            ),
            Answer(text="Three pages, and visits grew 8%.", reasoning="done"),
        )
        surface = StepSurface()
        started = time.monotonic()
        await runtime.service.handle(say("what do we have on milk tea, and how are visits?"), surface)
        elapsed = time.monotonic() - started
    finally:
        os.environ.pop("ANALYTICS_DELAY", None)
    assert len(fake_gateway.requests) == 2  # one follow-up answers both
    first = offered(fake_gateway)
    assert "cms__search" in first and "analytics__report" in first and "calculator" in first
    results = tool_messages(fake_gateway)
    assert [m["tool_call_id"] for m in results] == ["c1", "c2"]
    assert "3 pages about milk tea" in results[0]["content"] and "12,400" in results[1]["content"]
    assert all(m["content"].startswith("<untrusted-data source=") for m in results)
    assert elapsed < 10, elapsed
    assert SYSTEM_NOTE in fake_gateway.requests[0].body["messages"][0]["content"]
    assert surface.texts[-1].startswith("Three pages, and visits grew 8%.")
    # Each call was shown while it ran and when it ended.
    assert ("cms · search", "running", "") in surface.step_updates[0]
    final = {title: state for title, state, _ in surface.step_updates[-1]}
    assert final == {"cms · search": "done", "analytics · report": "done"}
    rows = await calls(runtime)
    assert [(r.server, r.tool, r.outcome, r.user_id, r.chat) for r in rows] == [
        ("cms", "search", "ok", "alice", "alice"),
        ("analytics", "report", "ok", "alice", "alice"),
    ]
    assert all(r.duration_ms >= 700 for r in rows)
    # They ran at the same time: the second started before the first (0.8 s at least) ended.
    first_end = rows[0].started_at.timestamp() + rows[0].duration_ms / 1000
    assert (
        rows[1].started_at.timestamp() < first_end - 0.5
        and rows[0].started_at.timestamp() < rows[1].started_at.timestamp() + rows[1].duration_ms / 1000 - 0.5
    )


async def test_a_hanging_tool_times_out_as_a_tool_error_and_the_answer_goes_on(
    mcp_runtime, fake_gateway: FakeGateway
) -> None:
    runtime = await mcp_runtime(cms={"timeout": 0.5})
    fake_gateway.script(
        Answer(text="", reasoning="try", tool_calls=[FakeToolCall("cms__hang", {}, id="h1")]),
        Answer(text="The CMS did not answer; here is what I know.", reasoning="ok"),
    )
    surface = RecordingSurface()
    started = time.monotonic()
    await runtime.service.handle(say("hang please"), surface)
    assert time.monotonic() - started < 5
    result = tool_messages(fake_gateway)[0]["content"]
    assert "did not answer within 0.5 seconds" in result
    assert surface.texts[-1].startswith("The CMS did not answer")
    # Without a drawing surface the status line named the tool and that it failed.
    assert any("cms · hang ✗" in s for s in surface.statuses) and surface.statuses[-1] == ""
    assert [(r.tool, r.outcome) for r in await calls(runtime)] == [("hang", "timeout")]
    assert runtime.mcp.servers["cms"].ready  # a slow tool is not a dead server


async def test_a_crashing_server_gives_a_tool_error_and_is_restarted(mcp_runtime, fake_gateway) -> None:
    runtime = await mcp_runtime()
    cms = runtime.mcp.servers["cms"]
    fake_gateway.script(
        Answer(text="", reasoning="try", tool_calls=[FakeToolCall("cms__crash", {}, id="x1")]),
        Answer(text="The CMS fell over.", reasoning="ok"),
    )
    surface = RecordingSurface()
    await runtime.service.handle(say("crash it"), surface)
    assert "stopped while running crash" in tool_messages(fake_gateway)[0]["content"]
    assert surface.texts[-1].startswith("The CMS fell over.")
    await eventually(lambda: cms.ready and cms.connects == 2, timeout=20)
    fake_gateway.script(
        Answer(text="", reasoning="again", tool_calls=[FakeToolCall("cms__search", {"query": "tea"})]),
        Answer(text="Back: three pages.", reasoning="ok"),
    )
    await runtime.service.handle(say("search again"), surface)
    assert "3 pages about tea" in tool_messages(fake_gateway, 3)[-1]["content"]
    assert [r.outcome for r in await calls(runtime)] == ["crashed", "ok"]


async def _ask_publish(runtime: Runtime, gateway: FakeGateway, surface: RecordingSurface) -> asyncio.Task:
    gateway.script(
        Answer(
            text="",
            reasoning="publish",
            tool_calls=[FakeToolCall("cms__publish_page", {"title": "Autumn menu"}, id="p1")],
        ),
        Answer(text="Done.", reasoning="ok"),
    )
    return asyncio.create_task(runtime.service.handle(say("publish the autumn menu", key=GROUP), surface))


def _approval(surface: RecordingSurface) -> tuple[str, str, str]:
    """The approval request's text, and its Approve and Deny data."""
    for write, message_id in zip(surface.writes, surface.order):
        if write.controls and "Approval needed" in surface.messages[message_id].history[0]:
            approve, deny = write.controls[0]
            return surface.messages[message_id].history[0], approve.press.encode(), deny.press.encode()
    return "", "", ""


async def test_a_destructive_tool_waits_for_an_admin_and_runs_once_approved(mcp_runtime, fake_gateway) -> None:
    runtime = await mcp_runtime(cms={"allow": {"groups": True}})
    surface = StepSurface()
    turn = await _ask_publish(runtime, fake_gateway, surface)
    text, approve, deny = await eventually(lambda: _approval(surface)[0] and _approval(surface))
    assert "cms · publish_page" in text and "Autumn menu" in text and "2 minutes" in text
    assert len(approve.encode()) <= 64
    # Waiting is visible as the step's state.
    await eventually(
        lambda: any(
            ("cms · publish_page", "pending", "waiting for an admin's approval") in u for u in surface.step_updates
        )
    )
    # A colleague who is not an admin cannot approve it.
    ack = await runtime.service.click(Click(approve, ALICE, GROUP), surface)
    assert "Only an admin" in ack.text
    assert not turn.done()
    ack = await runtime.service.click(Click(approve, ADMIN, GROUP), surface)
    assert ack.text == "Approved: running it."
    await turn
    assert "published 'Autumn menu'" in tool_messages(fake_gateway)[0]["content"]
    request = next(m for m in surface.messages.values() if "Approval needed" in m.history[0])
    assert request.text.endswith("✅ Approved by Boss.")
    assert not surface.writes[-1].controls or surface.writes[-1].turn_id != 0  # the request lost its buttons
    rows = await calls(runtime)
    assert [(r.tool, r.outcome, r.decision, r.decided_by) for r in rows] == [("publish_page", "ok", "approved", "Boss")]
    # The same tap again changes nothing.
    again = await runtime.service.click(Click(approve, ADMIN, GROUP), surface)
    assert again.text == "This request was already answered."


async def test_a_denied_tool_does_not_run(mcp_runtime, fake_gateway) -> None:
    runtime = await mcp_runtime(cms={"allow": {"groups": True}})
    surface = RecordingSurface()
    turn = await _ask_publish(runtime, fake_gateway, surface)
    _, _, deny = await eventually(lambda: _approval(surface)[0] and _approval(surface))
    ack = await runtime.service.click(Click(deny, ADMIN, GROUP), surface)
    assert ack.text == "Denied: it will not run."
    await turn
    result = tool_messages(fake_gateway)[0]["content"]
    assert "an admin denied running cms · publish_page" in result and "published" not in result
    assert [(r.outcome, r.decision) for r in await calls(runtime)] == [("denied", "denied")]


async def test_an_unanswered_approval_denies_after_the_wait(mcp_runtime, fake_gateway) -> None:
    runtime = await mcp_runtime(cms={"allow": {"groups": True}}, BOT_MCP_APPROVAL_TIMEOUT=0.6)
    surface = RecordingSurface()
    started = time.monotonic()
    await (await _ask_publish(runtime, fake_gateway, surface))
    assert 0.5 < time.monotonic() - started < 5
    assert "no admin approved running cms · publish_page in time" in tool_messages(fake_gateway)[0]["content"]
    request = next(m for m in surface.messages.values() if "Approval needed" in m.history[0])
    assert "No answer in 0.6 seconds: not run." in request.text
    assert [(r.outcome, r.decision) for r in await calls(runtime)] == [("unanswered", "expired")]


async def test_tools_not_marked_read_only_ask_and_config_can_waive_it(mcp_runtime, fake_gateway) -> None:
    runtime = await mcp_runtime(cms={"confirm": {"count_*": "never"}})
    fake_gateway.script(
        Answer(text="", reasoning="count", tool_calls=[FakeToolCall("cms__count_pages", {})]),
        Answer(text="42.", reasoning="ok"),
        Answer(text="", reasoning="publish", tool_calls=[FakeToolCall("cms__publish_page", {"title": "x"})]),
        Answer(text="Needs an admin.", reasoning="ok"),
    )
    surface = RecordingSurface()
    await runtime.service.handle(say("how many pages?"), surface)
    assert tool_messages(fake_gateway)[0]["content"].count("42 pages") == 1  # ran without asking
    # A private chat whose user is not an admin: nobody could approve, so it is refused at once.
    started = time.monotonic()
    await runtime.service.handle(say("publish x"), surface)
    assert time.monotonic() - started < 3
    assert "no admin is in this private chat" in tool_messages(fake_gateway, 3)[-1]["content"]
    assert not any("Approval needed" in t for t in surface.texts)
    assert [r.outcome for r in await calls(runtime)] == ["ok", "no_admin"]


async def test_results_lose_hidden_tag_characters_and_are_marked_untrusted(mcp_runtime, fake_gateway) -> None:
    runtime = await mcp_runtime()
    fake_gateway.script(
        Answer(text="", reasoning="read", tool_calls=[FakeToolCall("cms__read_page", {"slug": "autumn"})]),
        Answer(text="18 yuan.", reasoning="ok"),
    )
    await runtime.service.handle(say("price of the autumn menu?"), RecordingSurface())
    content = tool_messages(fake_gateway)[0]["content"]
    assert "Page autumn: Autumn menu. Price 18 yuan." in content
    assert not any(0xE0000 <= ord(c) <= 0xE007F or c == "\u202e" for c in content)
    assert "[29 hidden character(s) removed]" in content
    assert content.startswith('<untrusted-data source="cms__read_page" id="')


async def test_a_group_where_the_server_is_off_is_not_offered_its_tools(mcp_runtime, fake_gateway) -> None:
    runtime = await mcp_runtime(analytics={"allow": {"groups": ["team-room"]}})
    surface = RecordingSurface()
    await runtime.service.handle(say("hi", key=GROUP), surface)
    names = offered(fake_gateway, 0)
    assert not any(n.startswith("cms__") for n in names)  # off in groups by default
    assert "analytics__report" in names  # listed for this group
    assert "calculator" in names
    await runtime.service.handle(say("hi"), surface)
    assert "cms__search" in offered(fake_gateway, 1)  # on in private chats
    # The admin page's rule wins over the config: cms on in this group, analytics off everywhere.
    await runtime.mcp.records.set_rule(ServerRule("cms", chat="team-room", allowed=True, set_by="admin page"))
    await runtime.mcp.records.set_rule(ServerRule("analytics", allowed=False, set_by="admin page"))
    await runtime.mcp.policy.load()
    await runtime.service.handle(say("again", key=GROUP), surface)
    names = offered(fake_gateway, 2)
    assert "cms__search" in names and not any(n.startswith("analytics__") for n in names)


async def test_stdio_servers_get_only_their_listed_environment(mcp_runtime, fake_gateway, monkeypatch) -> None:
    monkeypatch.setenv("TEAM_CMS_TOKEN", "cms-secret-value-1234")
    monkeypatch.setenv("UNRELATED_SECRET", "do-not-leak")
    runtime = await mcp_runtime(cms={"env": {"CMS_TOKEN": "${TEAM_CMS_TOKEN}"}})
    fake_gateway.script(
        Answer(text="", reasoning="env", tool_calls=[FakeToolCall("cms__environment", {})]),
        Answer(text="ok", reasoning="ok"),
    )
    await runtime.service.handle(say("env?"), RecordingSurface())
    names = set(tool_messages(fake_gateway)[0]["content"].split("\n")[1].split(","))
    assert "CMS_TOKEN" in names
    assert not names & {"UNRELATED_SECRET", "TEAM_CMS_TOKEN", "BYTESPIKE_API_KEY", "DATABASE_URL"}
    assert "cms-secret-value-1234" in runtime.settings.secrets()  # masked in logs


async def test_a_stdio_servers_stderr_goes_to_the_log_not_the_screen(mcp_runtime, caplog, capfd) -> None:
    """In ``bot chat`` the bot's stderr is the terminal: a server's chatter would land among
    the answers. It is logged instead, a line at a time, under the server's name."""
    with caplog.at_level(logging.INFO, logger="bot.mcp.connection"):
        await mcp_runtime()
        await eventually(lambda: "cms: ready, serving pages" in caplog.text, 10)
    assert "mcp cms stderr: cms: ready, serving pages" in caplog.text
    assert "serving pages" not in capfd.readouterr().err


async def test_calls_per_server_are_bounded_per_turn_and_secret_arguments_are_not_stored(
    mcp_runtime, fake_gateway
) -> None:
    runtime = await mcp_runtime(cms={"maxCallsPerTurn": 1})
    secret = "sk-live-4f9aK2mQ8zR7tY1wX3vB6nD0"
    fake_gateway.script(
        Answer(
            text="",
            reasoning="twice",
            tool_calls=[
                FakeToolCall("cms__search", {"query": secret}, id="a"),
                FakeToolCall("cms__search", {"query": "tea"}, id="b"),
            ],
        ),
        Answer(text="ok", reasoning="ok"),
    )
    await runtime.service.handle(say("search twice"), RecordingSurface())
    results = [m["content"] for m in tool_messages(fake_gateway)]
    assert sum("limit per answer" in r for r in results) == 1
    rows = await calls(runtime)
    assert sorted(r.outcome for r in rows) == ["limit", "ok"]
    stored = " ".join(r.arguments for r in rows)
    assert secret not in stored and "[redacted]" in stored and "tea" in stored


async def test_a_changed_tool_list_is_picked_up(mcp_runtime, fake_gateway) -> None:
    runtime = await mcp_runtime()
    fake_gateway.script(
        Answer(text="", reasoning="enable", tool_calls=[FakeToolCall("cms__enable_drafts", {})]),
        Answer(text="enabled", reasoning="ok"),
    )
    await runtime.service.handle(say("enable drafts"), RecordingSurface())
    cms = runtime.mcp.servers["cms"]
    await eventually(lambda: "cms__drafts" in cms.tools)
    await runtime.service.handle(say("hi"), RecordingSurface())
    assert "cms__drafts" in offered(fake_gateway, 2)


def test_bot_mcp_list_shows_each_server_its_state_and_tools(tmp_path: Path, monkeypatch, capsys) -> None:
    from bot.process.cli import main

    config = {
        "mcpServers": {
            "cms": stdio_entry("cms", exclude=["crash"], confirm={"count_*": "never"}),
            "gone": {"url": "http://127.0.0.1:9/mcp", "connectTimeout": 2},
            "off": {"command": "true", "disabled": True},
        }
    }
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(config))
    monkeypatch.chdir(tmp_path)  # no .env from the developer's checkout
    monkeypatch.setenv("BOT_MCP_CONFIG", str(path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'bot.db'}")
    with pytest.raises(SystemExit) as exited:
        main(["mcp", "list", "--format", "json"])
    assert exited.value.code == 1  # one server could not be reached
    report = {s["server"]: s for s in json.loads(capsys.readouterr().out)}
    assert report["cms"]["state"] == "ready" and report["cms"]["left_out"] == ["crash"]
    tools = {t["name"]: t for t in report["cms"]["tools"]}
    assert tools["cms__search"]["read_only"] and not tools["cms__search"]["asks_admin"]
    assert tools["cms__publish_page"]["asks_admin"] and not tools["cms__count_pages"]["asks_admin"]
    assert "cms__crash" not in tools
    assert report["gone"]["state"] == "failed" and "ConnectError" in report["gone"]["error"]
    assert report["off"]["state"] == "disabled"
    assert "private chats, no groups" in report["cms"]["chats"]


async def test_the_admin_page_shows_servers_and_calls_and_chooses_who_may_use_them(mcp_runtime, fake_gateway) -> None:
    import httpx

    from bot.admin.app import create_admin_app
    from bot.admin.auth import AdminAuth
    from bot.process.webapp import create_app
    from tests.test_admin_http import PASSWORD, hidden, login

    runtime = await mcp_runtime(cms={"confirm": {"count_*": "never"}})
    fake_gateway.script(
        Answer(
            text="", reasoning="s", tool_calls=[FakeToolCall("cms__search", {"query": "tea", "api_key": "k-1234567"})]
        ),
        Answer(text="ok", reasoning="ok"),
    )
    await runtime.service.handle(say("search tea"), RecordingSurface())
    await AdminAuth(runtime.settings, runtime.db).set_password(PASSWORD)
    app = create_app([], admin=create_admin_app(runtime.settings, runtime.db, mcp=runtime.mcp))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bot.test") as client:
        assert (await client.get("/admin/tools")).status_code == 303  # behind the login
        await login(client)
        page = await client.get("/admin/tools")
        assert page.status_code == 200
        html = page.text
        assert 'cms <small>(stdio)</small>: <span class="state-ready">ready</span>' in html
        assert "analytics <small>(http)</small>" in html
        assert "<code>cms__publish_page</code></td><td>destructive</td>\n      <td>an admin approves each call" in html
        assert "<code>cms__count_pages</code></td><td>destructive</td>\n      <td>runs at once" in html
        assert "any platform: private chats, no groups" in html
        # The call: who, where, what (the key's value not stored), how it ended.
        calls_table = html[html.index('id="calls"') :]
        assert "console:alice" in calls_table and "<code>cms__search</code>" in calls_table
        assert "k-1234567" not in html and "[redacted]" in calls_table and ">ok<" in calls_table
        # Turning a server on for every group, from the page, applies at once.
        csrf = hidden(html, "csrf")
        done = await client.post(
            "/admin/tools/rules", data={"csrf": csrf, "server": "cms", "chat_kind": "@groups", "action": "allow"}
        )
        assert done.status_code == 303
        assert "cms is allowed in */*/@groups" in (await client.get(done.headers["location"])).text
    await runtime.service.handle(say("hi", key=GROUP), RecordingSurface())
    assert "cms__search" in offered(fake_gateway, 2)
