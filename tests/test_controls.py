"""One vocabulary of controls: encoded once, drawn by each platform, read back the same; the
core decides what a click means (a kind nobody registered is a stale control)."""

from __future__ import annotations

import pytest

from adapters.slack import controls as slack_controls
from adapters.telegram import keyboards
from bot.copywriting.copy_extension import REFINE_PRESS
from bot.copywriting.refine import ACTIONS
from bot.core import texts
from bot.platform.controls import Button, Choice, Click, ControlKind, Press, answer_controls, streaming_controls
from bot.platform.messages import Author, ConversationKey
from tests.fakes.slack_api import invalid_blocks
from tests.surfaces import RecordingSurface, copy_controls

BIG = 9_223_372_036_854_775_807  # the largest turn id a 64-bit column holds


def presses(controls) -> list[Press]:
    out = []
    for row in controls:
        out.extend(b.press for b in (row.options if isinstance(row, Choice) else row))
    return out


@pytest.mark.parametrize(
    "press",
    [
        Press(ControlKind.STOP, BIG),
        Press(ControlKind.REGENERATE, 1),
        Press(ControlKind.FEEDBACK, BIG, ("1",)),
        Press(ControlKind.FEEDBACK, 5, ("-1",)),
        *(Press(REFINE_PRESS, BIG, ("10", a)) for a in ACTIONS),
    ],
)
def test_every_press_round_trips_within_64_bytes(press: Press) -> None:
    data = press.encode()
    assert len(data.encode()) <= 64 and Press.decode(data) == press


@pytest.mark.parametrize(
    "data",
    ["", "stop", "stop:", "stop:x", "STOP:1", "stop:-1", "refine:1:x y", "refine:1:a/b", "stop:" + "1" * 70, "日本:1"],
)
def test_data_that_is_no_press_at_all_is_refused(data: str) -> None:
    assert Press.decode(data) is None


@pytest.mark.parametrize(
    "data",
    [
        "regen:1:2",
        "fb:1",
        "fb:1:0",
        "fb:1:2",
        "refine:1:2",
        "refine:1:x:shorter",
        "refine:1:2:sideways",
        "other:1",
        "stop:1:now",
    ],
)
async def test_presses_nobody_wrote_are_stale_controls_and_do_nothing(service, data: str) -> None:
    surface = RecordingSurface()
    click = Click(data, Author("alice", "Alice"), ConversationKey("console", "local", "alice"))
    ack = await service.click(click, surface)
    await service.drain()
    assert ack.text == texts.STALE_CONTROL
    assert surface.order == []  # nothing was written, nothing was asked


def test_both_platforms_draw_the_same_controls_and_read_back_the_same_data() -> None:
    for controls in (streaming_controls(42), answer_controls(42), copy_controls(42, 3, "zh")):
        expected = [p.encode() for p in presses(controls)]
        markup = keyboards.markup(controls)
        assert markup is not None
        telegram = [b.callback_data for row in markup.inline_keyboard for b in row]
        blocks = slack_controls.blocks(controls)
        assert invalid_blocks([{"type": "markdown", "text": "x"}, *blocks]) is None
        slack = []
        for block in blocks:
            for element in block["elements"]:
                if element["type"] == "button":
                    slack.append(slack_controls.data_of({"action_id": element["action_id"], "value": element["value"]}))
                else:
                    slack.extend(
                        slack_controls.data_of({"action_id": element["action_id"], "selected_option": o})
                        for o in element["options"]
                    )
        assert telegram == expected
        assert sorted(map(str, slack)) == sorted(expected)


def test_the_core_decides_what_an_answer_shows() -> None:
    [[stop]] = streaming_controls(7)
    assert isinstance(stop, Button) and stop.press == Press(ControlKind.STOP, 7)
    plain = answer_controls(7)
    assert presses(plain) == [
        Press(ControlKind.REGENERATE, 7),
        Press(ControlKind.FEEDBACK, 7, ("1",)),
        Press(ControlKind.FEEDBACK, 7, ("-1",)),
    ]
    copy = copy_controls(7, 2)
    assert [row.short for row in copy if isinstance(row, Choice)] == ["1", "2"]
