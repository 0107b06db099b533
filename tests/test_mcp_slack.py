"""An MCP tool in a Slack channel, end to end: real slack-bolt against the fake Slack API, a
real FastMCP server over stdio, the fake gateway. The tool publishes, so an admin approves it
with a tap on the request the bot posts in the thread; the call is a task in the answer's
stream while it waits and runs."""

from __future__ import annotations

import json
from pathlib import Path

from bot.mcp.approval import APPROVE
from tests.fakes.gateway import Answer, FakeToolCall
from tests.fakes.mcp_servers import stdio_entry
from tests.fakes.slack_api import BOT_USER_ID, FakeMessage
from tests.polling import eventually
from tests.slack_harness import CHANNEL, _close, _harness

BOSS = "U0BOB0001"  # Bob is the admin here


def _request(fake, thread: str) -> FakeMessage | None:
    return next((m for m in fake.bot_replies(CHANNEL, thread) if "Approval needed" in m.text), None)


async def test_an_admin_approves_a_publishing_tool_with_one_tap_in_the_thread(
    make_settings, fake_gateway, fake_slack, tmp_path: Path
) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"cms": stdio_entry("cms", allow={"groups": True})}}))
    h = await _harness(make_settings, fake_gateway, fake_slack, BOT_MCP_CONFIG=str(path), BOT_ADMINS=f"slack:{BOSS}")
    fake = fake_slack
    try:
        assert await h.runtime.mcp.wait_ready(30)
        fake_gateway.script(
            Answer(
                text="",
                reasoning="publish",
                tool_calls=[FakeToolCall("cms__publish_page", {"title": "Autumn menu"}, id="pub1")],
            ),
            Answer(text="The autumn menu page is live.", reasoning="ok"),
        )
        thread, env = fake.user_message(CHANNEL, f"<@{BOT_USER_ID}> publish the autumn menu page", mention=True)
        await h.send(env)
        request = await eventually(lambda: (m := _request(fake, thread)) and m.button_ids and m)
        approve = next(a for a in request.button_ids if a.endswith(f"_{APPROVE}"))

        # While it waits, the answer's stream shows the call as a pending task (it shows
        # "in progress" first: the call starts before it asks).
        def pub1() -> dict | None:
            return {k: v for m in fake.bot_replies(CHANNEL, thread) for k, v in m.tasks().items()}.get("pub1")

        tasks = await eventually(lambda: (t := pub1()) and t["status"] == "pending" and t, what="a pending task")
        assert "approval" in tasks["details"]
        # Alice is no admin: she is told so, privately, and nothing runs.
        await h.click(fake.block_action(request, approve))
        said = await eventually(lambda: [r for r in fake.responses if "Only an admin" in r.get("text", "")])
        assert said[0].get("response_type", "ephemeral") == "ephemeral"
        await h.click(fake.block_action(request, approve, user=BOSS))
        await h.settle()
        assert (
            "published 'Autumn menu'"
            in next(m for m in fake_gateway.requests[1].json["messages"] if m["role"] == "tool")["content"]
        )
        assert "The autumn menu page is live." in h.reply_text(CHANNEL, thread)
        request = _request(fake, thread)
        assert request.text.endswith("✅ Approved by Bob.") and not request.button_ids
        final = {k: v for m in fake.bot_replies(CHANNEL, thread) for k, v in m.tasks().items()}["pub1"]
        assert final["status"] == "complete" and final["title"] == "cms · publish_page"
        rows = await h.runtime.mcp.records.recent()
        assert [(r["tool"], r["outcome"], r["decision"], r["decided_by"], r["user_id"], r["chat"]) for r in rows] == [
            ("publish_page", "ok", "approved", "Bob", "U0ALICE01", CHANNEL)
        ]
    finally:
        await _close(h)
