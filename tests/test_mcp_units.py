"""The MCP pieces that need no server: tool names, the config file, which chats may use a
server, what the call log keeps of arguments, what results lose, and an approval given in
another process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.mcp.approval import Approvals
from bot.mcp.connection import RemoteTool
from bot.mcp.names import is_valid, model_name
from bot.mcp.policy import decide
from bot.mcp.records import NewCall, ServerRule, ToolRecords
from bot.mcp.redact import REDACTED, looks_secret, redacted_json
from bot.mcp.servers_config import ConfigError, parse_config
from bot.mcp.untrusted import strip_hidden, wrap
from bot.store.db import Database
from bot.tools.context import CallContext, Where
from bot.usage.access import Admins
from tests.polling import eventually
from tests.surfaces import RecordingSurface


@given(st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True), st.text(min_size=1, max_size=200))
def test_every_tool_gets_a_valid_stable_name_of_at_most_64_characters(server: str, tool: str) -> None:
    name = model_name(server, tool)
    assert is_valid(name) and len(name) <= 64
    assert name == model_name(server, tool)
    assert name.startswith(server[:20])


def test_names_keep_simple_ones_and_never_collide() -> None:
    assert model_name("cms", "search_pages") == "cms__search_pages"
    assert model_name("cms", "get.page") != model_name("cms", "get_page") == "cms__get_page"
    long_a, long_b = model_name("cms", "x" * 80 + "a"), model_name("cms", "x" * 80 + "b")
    assert long_a != long_b and len(long_a) == len(long_b) == 64


def test_the_config_names_every_problem_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(
            {
                "mcpServers": {
                    "ok": {"command": "x"},
                    "both": {"command": "x", "url": "http://h/mcp"},
                    "typo": {"command": "x", "exlude": ["*"]},
                    "bad name": {"command": "x"},
                    "a__b": {"command": "x"},
                    "ftp": {"url": "ftp://h"},
                    "confirm": {"command": "x", "confirm": {"*": "sometimes"}},
                }
            }
        )
    text = "\n".join(err.value.lines)
    for needle in ("'both'", "'typo': exlude", "'bad name'", "'a__b'", "'ftp'", "'confirm'"):
        assert needle in text, needle
    assert "'ok'" not in text
    with pytest.raises(ConfigError):
        parse_config({"servers": {}})
    config = parse_config({"mcpServers": {"cms": {"command": "x", "type": "stdio", "autoApprove": []}}})
    assert config.servers[0].transport == "stdio"  # other clients' keys are accepted


def test_include_exclude_and_confirm_globs() -> None:
    server = parse_config(
        {
            "mcpServers": {
                "cms": {
                    "command": "x",
                    "include": ["search_*", "publish_*"],
                    "exclude": ["*_draft"],
                    "confirm": {"search_*": "never", "*": "always"},
                }
            }
        }
    ).servers[0]
    assert server.offers("search_pages") and server.offers("publish_page")
    assert not server.offers("publish_draft") and not server.offers("delete_page")
    assert server.confirm_for("search_pages") == "never" and server.confirm_for("publish_page") == "always"


def _server(**allow: object):
    return parse_config({"mcpServers": {"cms": {"command": "x", "allow": allow}}}).servers[0]


def test_a_server_is_off_in_groups_unless_the_config_or_an_admin_says_otherwise() -> None:
    group = Where("slack", "T1", "C1", True)
    private = Where("slack", "T1", "D1", False)
    assert decide([], _server(), private)[0] and not decide([], _server(), group)[0]
    assert decide([], _server(groups=["C1"]), group)[0] and not decide([], _server(groups=["C2"]), group)[0]
    assert not decide([], _server(platforms=["telegram"]), private)[0]
    assert not decide([], _server(workspaces=["T2"]), private)[0]
    rules = [
        ServerRule("*", allowed=False),
        ServerRule("cms", chat="@groups", allowed=True),
        ServerRule("cms", "slack", "T1", "C1", allowed=False),
    ]
    assert not decide(rules, _server(), private)[0]  # "every server off" beats the config
    assert decide(rules, _server(), Where("slack", "T1", "C9", True))[0]  # every group, for cms
    assert not decide(rules, _server(), group)[0]  # but not this channel


def test_secret_looking_arguments_are_not_stored() -> None:
    stored = json.loads(
        redacted_json(
            {
                "query": "autumn milk tea",
                "page_id": "550e8400-e29b-41d4-a716-446655440000",
                "count": 3,
                "url": "https://cms.example/pages/autumn",
                "password": "hunter2",
                "nested": {"apiKey": "abc"},
                "header": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
                "token_like": "sk-live-4f9aK2mQ8zR7tY1",
                "random": "Zx8Qp2Lm9Rt4Vb7Nc1Kd5Wy3",
                "list": ["ok", "ghp_" + "a1B2" * 9],
            }
        )
    )
    assert stored["query"] == "autumn milk tea" and stored["count"] == 3
    assert stored["page_id"].startswith("550e8400") and stored["url"].startswith("https://")
    for key in ("password", "header", "token_like", "random"):
        assert stored[key] == REDACTED, key
    assert stored["nested"] == {"apiKey": REDACTED} and stored["list"] == ["ok", REDACTED]
    assert not looks_secret("秋天的第一杯奶茶") and not looks_secret("The quick brown fox jumps")
    assert len(redacted_json({"text": "x" * 5000})) <= 2000


def test_results_lose_invisible_characters_but_keep_emoji_joiners() -> None:
    family = "👨\u200d👩\u200d👧"
    text, removed = strip_hidden(f"a\U000e0049\U000e0067b\u202ec\u2066d\u200be{family}")
    assert text == f"abcde{family}" and removed == 5
    wrapped = wrap("cms__x", "y" * 50, limit=10)
    assert "[result cut at 10 characters]" in wrapped
    nonce = wrapped.split('id="')[1].split('"')[0]
    assert wrapped.endswith(f'</untrusted-data id="{nonce}">') and wrap("cms__x", "y", limit=10) != wrapped


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


async def test_an_approval_given_in_another_process_reaches_the_waiting_turn(db: Database) -> None:
    records = ToolRecords(db)
    call_id = await records.start(NewCall("slack", "T1", "C1", "U1", 1, 7, "cms", "publish_page", "{}"))
    approvals = Approvals(records, Admins("slack:UADMIN"), timeout=10, poll=0.05)
    tool = RemoteTool("cms", "publish_page", "cms__publish_page", "", "", {}, False, True)
    surface = RecordingSurface()
    context = CallContext(Where("slack", "T1", "C1", True), "U1", 1, 7, surface)
    waiting = asyncio.create_task(approvals.ask(call_id, context, tool, '{"title": "x"}'))
    await eventually(lambda: surface.texts)
    # Another process took the tap: only the database row changes, no in-memory event here.
    assert await ToolRecords(db).decide(call_id, 7, "approved", "Boss")
    verdict = await asyncio.wait_for(waiting, 5)
    assert verdict.approved and verdict.by == "Boss"
    assert surface.texts[0].endswith("✅ Approved by Boss.")
    assert not await records.decide(call_id, 7, "denied", "Other")  # decided once


async def test_an_http_server_that_goes_away_is_reconnected_when_it_is_back() -> None:
    from bot.mcp.connection import CallFailed, McpServer, ServerState
    from tests.fakes.mcp_servers import free_port, serve_http

    port = free_port()
    config = parse_config(
        {"mcpServers": {"analytics": {"url": f"http://127.0.0.1:{port}/mcp", "connectTimeout": 2}}}
    ).servers[0]
    server = McpServer(config, ping_interval=0.2)
    try:
        async with serve_http(port=port):
            server.start()
            assert await server.wait_ready(20)
        await eventually(lambda: server.state is not ServerState.READY, timeout=20)  # the ping noticed
        with pytest.raises(CallFailed) as failed:
            await server.call(server.tools["analytics__report"], {"metric": "visits"}, 2)
        assert failed.value.outcome == "unavailable"
        async with serve_http(port=port):
            await eventually(lambda: server.ready and server.connects == 2, timeout=30)
            text, is_error = await server.call(server.tools["analytics__report"], {"metric": "visits"}, 5)
            assert "12,400" in text and not is_error
    finally:
        await server.stop()
