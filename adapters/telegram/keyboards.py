"""Inline buttons and their callback data (at most 64 bytes, "action:turn[:args]")."""
from __future__ import annotations

from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

STOP = "stop"
REGENERATE = "regen"
FEEDBACK = "fb"
REFINE = "refine"


@dataclass(frozen=True, slots=True)
class Press:
    action: str
    turn_id: int
    args: tuple[str, ...] = ()


def parse(data: str | None) -> Press | None:
    """The button a callback's data names, or None for data this bot did not write."""
    if not data:
        return None
    action, _, rest = data.partition(":")
    parts = rest.split(":")
    if action not in (STOP, REGENERATE, FEEDBACK, REFINE) or not parts[0].isdigit():
        return None
    return Press(action, int(parts[0]), tuple(parts[1:]))


def streaming(turn_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("⏹ Stop", callback_data=f"{STOP}:{turn_id}")]])


def answer(turn_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton("🔄 Regenerate", callback_data=f"{REGENERATE}:{turn_id}"),
        InlineKeyboardButton("👍", callback_data=f"{FEEDBACK}:{turn_id}:1"),
        InlineKeyboardButton("👎", callback_data=f"{FEEDBACK}:{turn_id}:-1"),
    ]])


# The refinement actions of the copywriting buttons (issue 5), in the order shown.
REFINE_ACTIONS = {
    "shorter": "✂️ Shorter", "longer": "➕ Longer", "playful": "🎈 Playful",
    "formal": "👔 Formal", "translate": "🌐 Translate", "regenerate": "🔄 Again",
}


def refine(turn_id: int, variants: int) -> list[list[InlineKeyboardButton]]:
    """One row of refinement buttons per variant (data: refine:turn:variant:action)."""
    rows = []
    for v in range(1, variants + 1):
        rows.append([InlineKeyboardButton(f"{v}·{label}", callback_data=f"{REFINE}:{turn_id}:{v}:{action}")
                     for action, label in REFINE_ACTIONS.items()])
    return rows
