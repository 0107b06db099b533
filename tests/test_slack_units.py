"""The Slack adapter's pure parts: routing, rendering, budgets' arithmetic, the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.slack import commands, controls, render
from adapters.slack.budgets import TIERS, SlackBudgets
from adapters.slack.normalise import BotIdentity, route_mention, route_message, strip_mention
from bot.copywriting.copy_extension import REFINE_PRESS
from bot.copywriting.refine import ACTIONS, label, language_of
from bot.platform.controls import ControlKind, Press, answer_controls, streaming_controls
from bot.platform.surface import Write, utf16_len
from tests.fakes.slack_api import invalid_blocks
from tests.surfaces import copy_controls

ME = BotIdentity(team_id="T1", user_id="UBOT", bot_id="BBOT")
MANIFESTS = Path(__file__).resolve().parent.parent / "adapters" / "slack"


def _msg(**fields: object) -> dict:
    return {
        "type": "message",
        "channel": "C1",
        "user": "UALICE",
        "ts": "10.0",
        "text": "hi",
        "channel_type": "channel",
        **fields,
    }


def test_mentions_open_a_thread_under_the_message_and_lose_the_bot_mention():
    route = route_mention(
        {"type": "app_mention", "channel": "C1", "user": "UALICE", "ts": "10.0", "text": "<@UBOT> write a slogan"},
        "T1",
        ME,
    )
    assert route is not None
    assert (route.key.chat, route.key.thread, route.text, route.mode) == ("C1", "10.0", "write a slogan", "answer")
    inside = route_mention(
        {
            "type": "app_mention",
            "channel": "C1",
            "user": "UALICE",
            "ts": "12.0",
            "thread_ts": "10.0",
            "text": "<@UBOT> and now?",
        },
        "T1",
        ME,
    )
    assert inside is not None and inside.key.thread == "10.0"


def test_channel_messages_routing():
    assert route_message(_msg(), "T1", ME) is None  # top-level chatter
    assert route_message(_msg(thread_ts="9.0", text="<@UBOT> hi"), "T1", ME) is None  # app_mention answers
    joined = route_message(_msg(thread_ts="9.0"), "T1", ME)
    assert joined is not None and joined.mode == "joined" and joined.group
    aside = route_message(_msg(thread_ts="9.0", text="<@UBOB> your turn"), "T1", ME)
    assert aside is not None and aside.mode == "context"


@pytest.mark.parametrize(
    "fields",
    [
        {"subtype": "message_changed"},
        {"subtype": "message_deleted"},
        {"subtype": "bot_message"},
        {"bot_id": "BOTHER"},
        {"user": "UBOT"},
        {"subtype": "channel_join"},
    ],
)
def test_ignored_messages(fields: dict):
    assert route_message(_msg(thread_ts="9.0", channel_type="channel", **fields), "T1", ME) is None
    assert route_message(_msg(channel="D1", channel_type="im", **fields), "T1", ME) is None


@pytest.mark.parametrize("missing", ["channel", "ts", "user"])
def test_malformed_events_are_dropped_not_raised_on(missing: str):
    event = {k: v for k, v in _msg(thread_ts="9.0").items() if k != missing}
    assert route_message(event, "T1", ME) is None
    assert route_mention(event, "T1", ME) is None


def test_direct_messages_each_thread_is_a_conversation():
    top = route_message(_msg(channel="D1", channel_type="im", ts="5.0"), "T1", ME)
    reply = route_message(_msg(channel="D1", channel_type="im", ts="6.0", thread_ts="5.0"), "T1", ME)
    assert top is not None and reply is not None
    assert top.key == reply.key and top.key.thread == "5.0" and not top.group


def test_bang_commands_become_core_commands():
    registered = frozenset({"new", "usage", "important"})
    assert strip_mention("<@UBOT> !new", "UBOT", registered) == "/new"
    assert strip_mention("<@UBOT> /usage", "UBOT", registered) == "/usage"
    assert strip_mention("!importantly, news", "UBOT", registered) == "!importantly, news"
    assert strip_mention("!new", "UBOT") == "!new"  # only a registered command


def test_payloads_carry_controls_only_where_they_belong():
    assert render.payload("**hi**", Write(3, final=True)).kwargs() == {"markdown_text": "**hi**"}
    last = render.payload("**hi**", Write(3, final=True, controls=answer_controls(3))).kwargs()
    assert last["blocks"][0] == {"type": "markdown", "text": "**hi**"}
    assert [e["action_id"] for e in last["blocks"][1]["elements"]] == [
        controls.REGENERATE,
        controls.FEEDBACK_UP,
        controls.FEEDBACK_DOWN,
    ]
    assert "markdown_text" not in last  # markdown_text can't be combined with blocks
    assert [Press.decode(e["value"]) for e in last["blocks"][1]["elements"]] == [
        Press(ControlKind.REGENERATE, 3),
        Press(ControlKind.FEEDBACK, 3, ("1",)),
        Press(ControlKind.FEEDBACK, 3, ("-1",)),
    ]
    streaming = render.payload("partial", Write(3, controls=streaming_controls(3))).kwargs()
    assert streaming["blocks"][-1]["elements"][0]["action_id"] == controls.STOP
    assert render.payload("Sorry, failed", Write(3, final=True, notice=True)).kwargs() == {
        "markdown_text": "Sorry, failed"
    }
    # Clicks on buttons of messages written before the shared vocabulary still work.
    assert controls.data_of({"action_id": "answer_regenerate", "value": "7"}) == "regen:7"
    assert controls.data_of({"action_id": "answer_feedback_down", "value": "7"}) == "fb:7:-1"
    assert (
        controls.data_of({"action_id": "answer_refine_2", "selected_option": {"value": "7:2:shorter"}})
        == "refine:7:2:shorter"
    )
    assert Press.decode(controls.data_of({"action_id": controls.STOP, "value": "nope"})) is None


def test_split_answer_keeps_code_blocks_whole_and_fits():
    text = "intro\n\n```js\n" + "console.log('x');\n" * 1500 + "```\n\nend 😀" * 2
    pieces = render.split_answer(text)
    assert len(pieces) >= 2
    for piece in pieces:
        assert utf16_len(piece) <= render.MAX_CHARS
        assert sum(1 for line in piece.splitlines() if line.startswith("```")) % 2 == 0


@pytest.mark.parametrize("method,count", sorted(TIERS.items()))
def test_budgets_are_the_documented_tiers(method: str, count: int):
    budget = SlackBudgets(60.0).method("T1", method)
    assert [(w.count, w.seconds) for w in budget.windows] == [(count, 60.0)]
    assert not budget.adaptive


def test_an_undocumented_limit_starts_from_tier_3_and_adapts():
    budget = SlackBudgets(60.0).method("T1", "assistant.threads.setStatus")
    assert [(w.count, w.seconds) for w in budget.windows] == [(50, 60.0)]
    assert budget.adaptive


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
    assert {"chat:write", "files:read", "files:write", "app_mentions:read", "im:history", "channels:history"} <= scopes
    assert socket["features"]["shortcuts"][0]["callback_id"] == render.STOP_SHORTCUT
    # Slack delivers the commands the manifest lists: each is one the core registered.
    from bot.brands.brand_extension import brands_extension
    from bot.characters.character_extension import COMMANDS as CHARACTER_COMMANDS
    from bot.copywriting.copy_extension import COPYWRITING

    extensions = (COPYWRITING, brands_extension(None))  # type: ignore[arg-type]
    registered = {f"/{c.info.name}" for e in extensions for c in e.commands}
    registered |= {f"/{c.name}" for c in CHARACTER_COMMANDS}
    assert {c["command"] for c in socket["features"]["slash_commands"]} <= registered
    assert "commands" in scopes
    assert all(c["url"].endswith("/slack/events") for c in http["features"]["slash_commands"])
    assert not any("url" in c for c in socket["features"]["slash_commands"])
    assert socket["settings"]["socket_mode_enabled"] and not http["settings"]["socket_mode_enabled"]
    assert http["settings"]["event_subscriptions"]["request_url"].endswith("/slack/events")
    assert http["settings"]["interactivity"]["request_url"].endswith("/slack/events")
    for manifest in (socket, http):  # otherwise the two variants are the same app
        for command in manifest["features"]["slash_commands"]:
            command.pop("url", None)
        manifest["settings"].pop("socket_mode_enabled")
        manifest["settings"]["event_subscriptions"].pop("request_url", None)
        manifest["settings"]["interactivity"].pop("request_url", None)
    assert socket == http


def _selects(kwargs: dict) -> list[dict]:
    return [e for b in kwargs.get("blocks", []) if b.get("block_id") == "answer_refine" for e in b["elements"]]


def test_copy_answers_get_a_refinement_select_per_variant():
    write = Write(42, final=True, controls=copy_controls(42, 3))
    kwargs = render.payload("**Option 1**\n\nGreat coffee.", write).kwargs()
    assert invalid_blocks(kwargs["blocks"]) is None  # Slack would accept it
    selects = _selects(kwargs)
    assert [s["action_id"] for s in selects] == [f"answer_refine_{n}" for n in (1, 2, 3)]
    for number, select in enumerate(selects, 1):
        assert select["type"] == "static_select"
        assert [o["text"]["text"] for o in select["options"]] == [label(a, "en") for a in ACTIONS]
        assert [Press.decode(controls.data_of({"selected_option": o})) for o in select["options"]] == [
            Press(REFINE_PRESS, 42, (str(number), a)) for a in ACTIONS
        ]
    # The answer buttons stay, after the selects.
    assert kwargs["blocks"][-1]["block_id"] == "answer_actions"


def test_refinement_labels_follow_the_copy_language():
    text = "**方案 1** · **秋天的第一杯**\n\n桂花乌龙真的香🌼"
    kwargs = render.payload(text, Write(1, final=True, controls=copy_controls(1, 1, language_of(text)))).kwargs()
    [select] = _selects(kwargs)
    assert select["options"][0]["text"]["text"] == label(ACTIONS[0], "zh")
    assert "1" in select["placeholder"]["text"]


def test_ten_variants_still_make_valid_blocks():
    kwargs = render.payload("x", Write(7, final=True, controls=copy_controls(7, 10))).kwargs()
    assert len(_selects(kwargs)) == 10 and invalid_blocks(kwargs["blocks"]) is None


@pytest.mark.parametrize("value", ["", "x y", "refine:1:a/b", "12:x y"])
def test_values_that_are_no_control_data_are_dropped(value: str):
    assert (
        Press.decode(controls.data_of({"action_id": "answer_refine_1", "selected_option": {"value": value}}) or "")
        is None
    )


def test_slash_commands_are_parsed_and_anchored():
    body = {
        "command": "/style",
        "text": " xiaohongshu ",
        "channel_id": "C1",
        "user_id": "UALICE",
        "team_id": "T1",
        "trigger_id": "1.2",
    }
    command = commands.parse(body)
    assert command is not None and command.core_text == "/style xiaohongshu" and not command.is_dm
    assert "<@UALICE>" in command.anchor_text() and "/style xiaohongshu" in command.anchor_text()
    assert commands.parse({**body, "command": "weather"}) is None
    assert commands.parse({**body, "channel_id": ""}) is None
    tricky = commands.parse({**body, "command": "/copy", "text": "<!channel> & `ticks`"})
    assert tricky is not None
    anchor = tricky.anchor_text()
    assert "<!channel>" not in anchor and "&lt;!channel&gt; &amp;" in anchor and "`ticks`" not in anchor


def test_slack_sdk_formats_debug_lines_only_when_debugging() -> None:
    import logging

    from adapters.slack.adapter import SDK_LOGGER, _quiet_sdk_debug

    sdk, root = logging.getLogger(SDK_LOGGER), logging.getLogger()
    saved = sdk.level, root.level
    try:
        sdk.setLevel(logging.NOTSET)
        root.setLevel(logging.WARNING)
        _quiet_sdk_debug()
        # slack-sdk tests ``logger.level <= DEBUG`` (its own level) before building each line.
        assert sdk.level == logging.WARNING
        root.setLevel(logging.DEBUG)
        _quiet_sdk_debug()  # a later start (tests, a reconfigured process) follows the new level
        assert sdk.level == logging.DEBUG  # LOG_LEVEL=DEBUG still shows them
        sdk.setLevel(logging.ERROR)
        _quiet_sdk_debug()
        assert sdk.level == logging.ERROR  # an operator's own setting stays
    finally:
        sdk.setLevel(saved[0])
        root.setLevel(saved[1])
