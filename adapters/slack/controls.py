"""The core's controls drawn as Block Kit, and a click read back into a ``Press``.

Buttons sit in one actions block; a ``Choice`` (a copy variant's refinements) is a
static select — six actions per variant would be a wall of buttons, and an overflow menu
holds only five. A button's value, and a select option's value, is the control's own
encoding (``bot.platform.controls.Press``).
"""

from __future__ import annotations

from typing import Any

from bot.platform import Button, Choice, ControlKind, Controls, Press

ACTION_PREFIX = "answer_"  # every action_id we write starts with it (one bolt listener)
BUTTONS_BLOCK = "answer_actions"
CHOICES_BLOCK = "answer_refine"
MAX_ELEMENTS = 25  # per actions block

# action_ids name what a control does (unique within its block); the value says it exactly.
# Buttons written before the shared vocabulary carried the turn id alone as their value, and
# old refinement options "turn:variant:action": the action_id names the kind for those.
_LEGACY = {
    "answer_stop": "stop",
    "answer_regenerate": "regen",
    "answer_feedback_up": "fb:{turn}:1",
    "answer_feedback_down": "fb:{turn}:-1",
}


def action_id(press: Press) -> str:
    """``answer_<kind>[_<args>]``: unique per control within a block."""
    return "_".join((f"{ACTION_PREFIX}{press.kind}", *press.args))


# The core's own controls, by the action_id they get (what tests and logs look for).
STOP = action_id(Press(ControlKind.STOP, 0))
REGENERATE = action_id(Press(ControlKind.REGENERATE, 0))
FEEDBACK_UP = action_id(Press(ControlKind.FEEDBACK, 0, ("1",)))
FEEDBACK_DOWN = action_id(Press(ControlKind.FEEDBACK, 0, ("-1",)))


def _button(button: Button) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "action_id": action_id(button.press),
        "value": button.press.encode(),
        "text": {"type": "plain_text", "text": button.label, "emoji": True},
    }
    if button.style:
        element["style"] = button.style
    return element


def _select(choice: Choice) -> dict[str, Any]:
    kind = choice.options[0].press.kind if choice.options else "choice"
    return {
        "type": "static_select",
        "action_id": f"{ACTION_PREFIX}{kind}_{choice.short}",
        "placeholder": {"type": "plain_text", "text": choice.placeholder, "emoji": True},
        "options": [
            {"text": {"type": "plain_text", "text": option.label, "emoji": True}, "value": option.press.encode()}
            for option in choice.options
        ],
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


def data_of(action: dict[str, Any]) -> str | None:
    """The control's data a block action reports (a press's encoding; the core decodes
    and judges it), or None for an action that carries none."""
    selected = action.get("selected_option")
    value = (selected or {}).get("value") if isinstance(selected, dict) else action.get("value")
    if not isinstance(value, str) or not value:
        return None
    if Press.decode(value) is not None:
        return value
    action_name = str(action.get("action_id", ""))
    legacy = _LEGACY.get(action_name)
    if legacy is not None and value.isdigit():
        return legacy.format(turn=value) if "{turn}" in legacy else f"{legacy}:{value}"
    kind = action_name.removeprefix(ACTION_PREFIX).split("_", 1)[0]
    return f"{kind}:{value}" if action_name.startswith(ACTION_PREFIX) and kind else None
