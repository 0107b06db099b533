"""The core's controls drawn as Block Kit, and a click read back into a ``Press``.

Buttons sit in one actions block; a ``Choice`` (a copy variant's refinements) is a
static select — six actions per variant would be a wall of buttons, and an overflow menu
holds only five. A button's value, and a select option's value, is the control's own
encoding (``bot.platform.controls.Press``).
"""
from __future__ import annotations

from typing import Any

from bot.platform.controls import Button, Choice, ControlKind, Controls, Press

ACTION_PREFIX = "answer_"  # every action_id we write starts with it (one bolt listener)
BUTTONS_BLOCK = "answer_actions"
CHOICES_BLOCK = "answer_refine"
MAX_ELEMENTS = 25  # per actions block

# action_ids name what a control does (unique within its block); the value says it exactly.
STOP = "answer_stop"
REGENERATE = "answer_regenerate"
FEEDBACK_UP = "answer_feedback_up"
FEEDBACK_DOWN = "answer_feedback_down"
REFINE = "answer_refine_"  # + the variant's number
# Buttons written before the shared vocabulary carried the turn id alone as their value.
_LEGACY_BUTTONS = {STOP: (ControlKind.STOP, 0), REGENERATE: (ControlKind.REGENERATE, 0),
                   FEEDBACK_UP: (ControlKind.FEEDBACK, 1), FEEDBACK_DOWN: (ControlKind.FEEDBACK, -1)}


def action_id(press: Press) -> str:
    if press.kind is ControlKind.FEEDBACK:
        return FEEDBACK_UP if press.value > 0 else FEEDBACK_DOWN
    if press.kind is ControlKind.REFINE:
        return f"{REFINE}{press.variant}"
    return STOP if press.kind is ControlKind.STOP else REGENERATE


def _button(button: Button) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button", "action_id": action_id(button.press), "value": button.press.encode(),
        "text": {"type": "plain_text", "text": button.label, "emoji": True}}
    if button.style:
        element["style"] = button.style
    return element


def _select(choice: Choice) -> dict[str, Any]:
    return {
        "type": "static_select", "action_id": f"{REFINE}{choice.short}",
        "placeholder": {"type": "plain_text", "text": choice.placeholder, "emoji": True},
        "options": [{"text": {"type": "plain_text", "text": option.label, "emoji": True},
                     "value": option.press.encode()} for option in choice.options],
    }


def blocks(controls: Controls) -> list[dict[str, Any]]:
    """Selects first (one block), then the buttons (one block)."""
    selects = [_select(row) for row in controls if isinstance(row, Choice)]
    buttons = [_button(b) for row in controls if not isinstance(row, Choice) for b in row]
    out = []
    if selects:
        out.append({"type": "actions", "block_id": CHOICES_BLOCK, "elements": selects[:MAX_ELEMENTS]})
    if buttons:
        out.append({"type": "actions", "block_id": BUTTONS_BLOCK, "elements": buttons[:MAX_ELEMENTS]})
    return out


def press_of(action: dict[str, Any]) -> Press | None:
    """The press a block action reports, or None for one this bot did not write."""
    selected = action.get("selected_option")
    value = (selected or {}).get("value") if isinstance(selected, dict) else action.get("value")
    if not isinstance(value, str):
        return None
    press = Press.decode(value)
    if press is not None:
        return press
    legacy = _LEGACY_BUTTONS.get(str(action.get("action_id", "")))
    if legacy is not None and value.isdigit():
        kind, feedback = legacy
        return Press(kind, int(value), value=feedback)
    turn, _, rest = value.partition(":")  # an old refinement option: "turn:variant:action"
    return Press.decode(f"{ControlKind.REFINE}:{turn}:{rest}") if turn.isdigit() else None
