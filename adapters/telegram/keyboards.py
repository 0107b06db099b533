"""The core's controls drawn as inline keyboards; a click's ``callback_data`` is the
control's own encoding (``bot.platform.controls.Press``), decoded by the core's vocabulary."""

from __future__ import annotations

import functools

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.platform import Button, Choice, Controls

PER_ROW = 3  # a choice's buttons per keyboard row


def _button(button: Button, prefix: str = "") -> InlineKeyboardButton:
    return InlineKeyboardButton(
        f"{prefix} · {button.label}" if prefix else button.label, callback_data=button.press.encode()
    )


def markup(controls: Controls) -> InlineKeyboardMarkup | None:
    """Rows of buttons; a choice becomes its options labelled "1 · Shorter", rows of three."""
    rows: list[list[InlineKeyboardButton]] = []
    for row in controls:
        if isinstance(row, Choice):
            buttons = [_button(option, row.short) for option in row.options]
            rows.extend(buttons[i : i + PER_ROW] for i in range(0, len(buttons), PER_ROW))
        else:
            rows.append([_button(button) for button in row])
    return InlineKeyboardMarkup(rows) if rows else None


@functools.lru_cache(maxsize=1024)
def markup_json(controls: Controls) -> str | None:
    """``markup`` as the Bot API's JSON, built once per distinct controls: every edit of an
    answer repeats the same keyboard, and Bot API calls take it as it is."""
    built = markup(controls)
    return None if built is None else built.to_json()
