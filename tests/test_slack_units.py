"""The Slack adapter's pure parts: routing, rendering, budgets' arithmetic, the manifest."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.slack import render
from adapters.slack.budgets import TIERS, SlackBudgets, tier_budget
from adapters.slack.normalise import Identity, route_mention, route_message, strip_mention
from bot.surface import Write, utf16_len

ME = Identity(team_id="T1", user_id="UBOT", bot_id="BBOT")
MANIFESTS = Path(__file__).resolve().parent.parent / "adapters" / "slack"


def _msg(**fields: object) -> dict:
    return {"type": "message", "channel": "C1", "user": "UALICE", "ts": "10.0", "text": "hi",
            "channel_type": "channel", **fields}


def test_mentions_open_a_thread_under_the_message_and_lose_the_bot_mention():
    route = route_mention({"type": "app_mention", "channel": "C1", "user": "UALICE", "ts": "10.0",
                           "text": "<@UBOT> write a slogan"}, "T1", ME)
    assert route is not None
    assert (route.key.chat, route.key.thread, route.text, route.mode) == ("C1", "10.0", "write a slogan", "answer")
    inside = route_mention({"type": "app_mention", "channel": "C1", "user": "UALICE", "ts": "12.0",
                            "thread_ts": "10.0", "text": "<@UBOT> and now?"}, "T1", ME)
    assert inside is not None and inside.key.thread == "10.0"


def test_channel_messages_routing():
    assert route_message(_msg(), "T1", ME) is None  # top-level chatter
    assert route_message(_msg(thread_ts="9.0", text="<@UBOT> hi"), "T1", ME) is None  # app_mention answers
    joined = route_message(_msg(thread_ts="9.0"), "T1", ME)
    assert joined is not None and joined.mode == "joined" and joined.group
    aside = route_message(_msg(thread_ts="9.0", text="<@UBOB> your turn"), "T1", ME)
    assert aside is not None and aside.mode == "context"


@pytest.mark.parametrize("fields", [
    {"subtype": "message_changed"}, {"subtype": "message_deleted"}, {"subtype": "bot_message"},
    {"bot_id": "BOTHER"}, {"user": "UBOT"}, {"subtype": "channel_join"},
])
def test_ignored_messages(fields: dict):
    assert route_message(_msg(thread_ts="9.0", channel_type="channel", **fields), "T1", ME) is None
    assert route_message(_msg(channel="D1", channel_type="im", **fields), "T1", ME) is None


def test_direct_messages_each_thread_is_a_conversation():
    top = route_message(_msg(channel="D1", channel_type="im", ts="5.0"), "T1", ME)
    reply = route_message(_msg(channel="D1", channel_type="im", ts="6.0", thread_ts="5.0"), "T1", ME)
    assert top is not None and reply is not None
    assert top.key == reply.key and top.key.thread == "5.0" and not top.group


def test_bang_commands_become_core_commands():
    assert strip_mention("<@UBOT> !new", "UBOT") == "/new"
    assert strip_mention("<@UBOT> /usage", "UBOT") == "/usage"
    assert strip_mention("!important news", "UBOT") == "!important news"


def test_payloads_carry_controls_only_where_they_belong():
    assert render.payload("**hi**", Write(3, final=True, last_page=False)).kwargs() == {"markdown_text": "**hi**"}
    last = render.payload("**hi**", Write(3, final=True)).kwargs()
    assert last["blocks"][0] == {"type": "markdown", "text": "**hi**"}
    assert [e["action_id"] for e in last["blocks"][1]["elements"]] == \
        [render.REGENERATE, render.FEEDBACK_UP, render.FEEDBACK_DOWN]
    assert "markdown_text" not in last  # markdown_text can't be combined with blocks
    streaming = render.payload("partial", Write(3)).kwargs()
    assert streaming["blocks"][-1]["elements"][0]["action_id"] == render.STOP
    assert render.payload("Sorry, failed", Write(3, final=True, notice=True)).kwargs() == \
        {"markdown_text": "Sorry, failed"}


def test_split_answer_keeps_code_blocks_whole_and_fits():
    text = "intro\n\n```js\n" + "console.log('x');\n" * 1500 + "```\n\nend 😀" * 2
    pieces = render.split_answer(text)
    assert len(pieces) >= 2
    for piece in pieces:
        assert utf16_len(piece) <= render.MAX_CHARS
        assert sum(1 for line in piece.splitlines() if line.startswith("```")) % 2 == 0


@pytest.mark.parametrize("method,count", sorted(TIERS.items()))
def test_budgets_never_exceed_a_tier_in_any_window(method: str, count: int):
    window = 60.0
    budget = tier_budget(count, window, method)["T1"]
    burst, leak_per_window = budget.rate, budget.rate / budget.per * window
    assert burst + leak_per_window <= count  # a leaky bucket lets through burst + leak·window
    assert leak_per_window >= count * 0.7  # while using most of the tier


def test_post_budget_is_per_channel():
    budgets = SlackBudgets(60.0)
    assert budgets.post("T1", "C1") is budgets.post("T1", "C1")
    assert budgets.post("T1", "C1") is not budgets.post("T1", "C2")
    assert budgets.method("T1", "chat.update") is not budgets.method("T2", "chat.update")


def test_manifests_subscribe_to_what_the_adapter_handles():
    socket = json.loads((MANIFESTS / "manifest.socket.json").read_text())
    http = json.loads((MANIFESTS / "manifest.http.json").read_text())
    events = set(socket["settings"]["event_subscriptions"]["bot_events"])
    assert {"app_mention", "message.channels", "message.im", "assistant_thread_started"} <= events
    scopes = set(socket["oauth_config"]["scopes"]["bot"])
    assert {"chat:write", "files:read", "app_mentions:read", "im:history", "channels:history"} <= scopes
    assert socket["features"]["shortcuts"][0]["callback_id"] == render.STOP_SHORTCUT
    assert socket["settings"]["socket_mode_enabled"] and not http["settings"]["socket_mode_enabled"]
    assert http["settings"]["event_subscriptions"]["request_url"].endswith("/slack/events")
    assert http["settings"]["interactivity"]["request_url"].endswith("/slack/events")
    for manifest in (socket, http):  # otherwise the two variants are the same app
        manifest["settings"].pop("socket_mode_enabled")
        manifest["settings"]["event_subscriptions"].pop("request_url", None)
        manifest["settings"]["interactivity"].pop("request_url", None)
    assert socket == http
