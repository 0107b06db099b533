"""One vocabulary of controls: encoded once, drawn by each platform, read back the same."""
from __future__ import annotations

import pytest

from adapters.slack import controls as slack_controls
from adapters.telegram import keyboards
from bot.copywriting.refine import ACTIONS
from bot.platform.controls import Button, Choice, ControlKind, Press, answer_controls, streaming_controls
from tests.fakes.slack_api import invalid_blocks

BIG = 9_223_372_036_854_775_807  # the largest turn id a 64-bit column holds


def presses(controls) -> list[Press]:
    out = []
    for row in controls:
        out.extend(b.press for b in (row.options if isinstance(row, Choice) else row))
    return out


@pytest.mark.parametrize("press", [
    Press(ControlKind.STOP, BIG), Press(ControlKind.REGENERATE, 1), Press(ControlKind.FEEDBACK, BIG, value=1),
    Press(ControlKind.FEEDBACK, 5, value=-1),
    *(Press(ControlKind.REFINE, BIG, variant=10, action=a) for a in ACTIONS),
])
def test_every_press_round_trips_within_64_bytes(press: Press) -> None:
    data = press.encode()
    assert len(data.encode()) <= 64 and Press.decode(data) == press


@pytest.mark.parametrize("data", ["", "stop", "stop:", "stop:x", "regen:1:2", "fb:1", "fb:1:0", "fb:1:2",
                                  "refine:1:2", "refine:1:x:shorter", "refine:1:2:sideways", "other:1",
                                  "stop:" + "1" * 70])
def test_data_we_did_not_write_is_refused(data: str) -> None:
    assert Press.decode(data) is None


def test_both_platforms_draw_the_same_controls_and_read_back_the_same_presses() -> None:
    for controls in (streaming_controls(42), answer_controls(42), answer_controls(42, 3, "zh")):
        expected = presses(controls)
        markup = keyboards.markup(controls)
        assert markup is not None
        telegram = [Press.decode(b.callback_data) for row in markup.inline_keyboard for b in row]
        blocks = slack_controls.blocks(controls)
        assert invalid_blocks([{"type": "markdown", "text": "x"}, *blocks]) is None
        slack = []
        for block in blocks:
            for element in block["elements"]:
                if element["type"] == "button":
                    slack.append(slack_controls.press_of({"action_id": element["action_id"], "value": element["value"]}))
                else:
                    slack.extend(slack_controls.press_of({"action_id": element["action_id"], "selected_option": o})
                                 for o in element["options"])
        assert telegram == expected
        assert sorted(map(repr, slack)) == sorted(map(repr, expected))


def test_the_core_decides_what_an_answer_shows() -> None:
    [[stop]] = streaming_controls(7)
    assert isinstance(stop, Button) and stop.press == Press(ControlKind.STOP, 7)
    plain = answer_controls(7)
    assert presses(plain) == [Press(ControlKind.REGENERATE, 7), Press(ControlKind.FEEDBACK, 7, value=1),
                              Press(ControlKind.FEEDBACK, 7, value=-1)]
    copy = answer_controls(7, 2)
    assert [row.short for row in copy if isinstance(row, Choice)] == ["1", "2"]
