"""Inline buttons and their callback data (at most 64 bytes, "action:turn[:args]")."""
from __future__ import annotations

from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.copywriting.refine import ACTIONS, LABELS

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


def answer(turn_id: int, variants: int = 0) -> InlineKeyboardMarkup:
    """The final answer's buttons: refinements per copy variant, then regenerate/feedback."""
    rows = refine(turn_id, variants) if variants else []
    rows.append([
        InlineKeyboardButton("🔄 Regenerate", callback_data=f"{REGENERATE}:{turn_id}"),
        InlineKeyboardButton("👍", callback_data=f"{FEEDBACK}:{turn_id}:1"),
        InlineKeyboardButton("👎", callback_data=f"{FEEDBACK}:{turn_id}:-1"),
    ])
    return InlineKeyboardMarkup(rows)


def refine(turn_id: int, variants: int, per_row: int = 3) -> list[list[InlineKeyboardButton]]:
    """Each variant's one-tap refinements (data: refine:turn:variant:action), rows of three."""
    rows: list[list[InlineKeyboardButton]] = []
    for number in range(1, variants + 1):
        buttons = [InlineKeyboardButton(f"{number} · {LABELS[action][1]}",
                                        callback_data=f"{REFINE}:{turn_id}:{number}:{action}")
                   for action in ACTIONS]
        rows.extend(buttons[i:i + per_row] for i in range(0, len(buttons), per_row))
    return rows
