"""The controls an answer shows, in one platform-neutral vocabulary.

The core decides which controls a write carries (``Write.controls``); an adapter only
draws them (Telegram: inline keyboards; Slack: buttons and selects) and turns a click
back into a ``Press`` with ``Press.decode``. One compact encoding serves both platforms:
it fits Telegram's 64-byte ``callback_data`` and Slack's action values, and it is the
format Telegram buttons have always carried, so buttons on older messages keep working.
``ChatService.act`` routes every click.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from bot.copywriting.refine import ACTIONS, label
from bot.platform.messages import Author, ConversationKey

MAX_DATA_BYTES = 64  # Telegram's callback_data limit; Slack allows 2,000 characters


class ControlKind(StrEnum):
    STOP = "stop"
    REGENERATE = "regen"
    FEEDBACK = "fb"
    REFINE = "refine"


@dataclass(frozen=True, slots=True)
class Press:
    """What a click asks for: ``kind`` on ``turn_id``, with its arguments."""

    kind: ControlKind
    turn_id: int
    variant: int = 0  # REFINE: the copy variant's number (1-based)
    action: str = ""  # REFINE: one of bot.copywriting.refine.ACTIONS
    value: int = 0  # FEEDBACK: +1 or -1

    def encode(self) -> str:
        if self.kind is ControlKind.FEEDBACK:
            data = f"{self.kind}:{self.turn_id}:{self.value}"
        elif self.kind is ControlKind.REFINE:
            data = f"{self.kind}:{self.turn_id}:{self.variant}:{self.action}"
        else:
            data = f"{self.kind}:{self.turn_id}"
        assert len(data.encode()) <= MAX_DATA_BYTES
        return data

    @classmethod
    def decode(cls, data: str | None) -> Press | None:
        """The press ``data`` encodes, or None for data this bot did not write."""
        if not data or len(data) > MAX_DATA_BYTES:
            return None
        head, _, rest = data.partition(":")
        try:
            kind = ControlKind(head)
        except ValueError:
            return None
        args = rest.split(":")
        if not args[0].isdigit():
            return None
        turn_id = int(args[0])
        if kind is ControlKind.FEEDBACK:
            if len(args) != 2 or args[1] not in ("1", "-1"):
                return None
            return cls(kind, turn_id, value=int(args[1]))
        if kind is ControlKind.REFINE:
            if len(args) != 3 or not args[1].isdigit() or args[2] not in ACTIONS:
                return None
            return cls(kind, turn_id, variant=int(args[1]), action=args[2])
        return cls(kind, turn_id) if len(args) == 1 else None


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    press: Press
    style: Literal["", "primary", "danger"] = ""


@dataclass(frozen=True, slots=True)
class Choice:
    """Alternatives for one subject (a copy variant's refinements): a select where the
    platform has one, a group of buttons labelled ``"{short} · {label}"`` elsewhere."""

    short: str  # "1": the subject, as a button prefix
    placeholder: str  # "Option 1: refine…"
    options: tuple[Button, ...]


Row = tuple[Button, ...] | Choice
Controls = tuple[Row, ...]


@dataclass(frozen=True, slots=True)
class Action:
    """A click on one of our controls, as an adapter reports it to the core."""

    press: Press
    user: Author
    key: ConversationKey  # the conversation whose message carries the control


def streaming_controls(turn_id: int) -> Controls:
    return ((Button("⏹ Stop", Press(ControlKind.STOP, turn_id), "danger"),),)


def answer_controls(turn_id: int, variants: int = 0, language: str = "en") -> Controls:
    """A finished answer's controls: each copy variant's refinements, then regenerate and
    feedback."""
    rows: list[Row] = []
    for number in range(1, variants + 1):
        placeholder = f"方案 {number}：改写…" if language == "zh" else f"Option {number}: refine…"
        rows.append(Choice(str(number), placeholder, tuple(
            Button(label(action, language), Press(ControlKind.REFINE, turn_id, variant=number, action=action))
            for action in ACTIONS)))
    rows.append((
        Button("🔄 Regenerate", Press(ControlKind.REGENERATE, turn_id)),
        Button("👍", Press(ControlKind.FEEDBACK, turn_id, value=1)),
        Button("👎", Press(ControlKind.FEEDBACK, turn_id, value=-1)),
    ))
    return tuple(rows)


def language_of(text: str) -> str:
    """"zh" when Chinese characters make up a good share of ``text`` (for control labels)."""
    letters = [ch for ch in text if ch.isalpha()]
    cjk = sum(1 for ch in letters if "\u4e00" <= ch <= "\u9fff")
    return "zh" if letters and cjk >= 0.3 * len(letters) else "en"
