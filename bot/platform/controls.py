"""The controls an answer shows, in one platform-neutral vocabulary.

The core decides which controls a write carries (``Write.controls``); an adapter only
draws them (Telegram: inline keyboards; Slack: buttons and selects) with each control's
``Press.encode()`` as its data, and hands a click's data back to the core
(``Inbox.click``), which decodes it and routes it to the handler registered for its kind.
One compact encoding serves every platform: it fits Telegram's 64-byte ``callback_data``
and Slack's action values, and it is the format buttons have always carried, so buttons
on older messages keep working. The vocabulary names no feature: features register their
own kinds of press (copywriting: ``refine``) with the core.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from bot.platform.messages import Author, ConversationKey

MAX_DATA_BYTES = 64  # Telegram's callback_data limit; Slack allows 2,000 characters
_KIND = re.compile(r"[a-z]{1,16}")
_ARG = re.compile(r"-?[A-Za-z0-9_]{1,24}")


class ControlKind(StrEnum):
    """The core's own controls; features add kinds of their own (plain strings)."""

    STOP = "stop"
    REGENERATE = "regen"
    FEEDBACK = "fb"


@dataclass(frozen=True, slots=True)
class Press:
    """What a click asks for: ``kind`` on ``turn_id``, with the kind's own arguments."""

    kind: str  # a ControlKind, or a kind a feature registered
    turn_id: int
    args: tuple[str, ...] = ()

    def encode(self) -> str:
        data = ":".join((str(self.kind), str(self.turn_id), *self.args))
        assert len(data.encode()) <= MAX_DATA_BYTES, data
        return data

    @classmethod
    def decode(cls, data: str | None) -> Press | None:
        """The press ``data`` spells, or None for data that is not a press at all. Whether
        its kind and arguments mean anything is the core's call (an unknown kind is a
        stale control, answered as such)."""
        if not data or len(data.encode()) > MAX_DATA_BYTES:
            return None
        kind, _, rest = data.partition(":")
        turn, *args = rest.split(":")
        if not _KIND.fullmatch(kind) or not turn.isdigit() or not all(_ARG.fullmatch(a) for a in args):
            return None
        return cls(kind, int(turn), tuple(args))


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
class Click:
    """A click on one of our controls, as an adapter reports it: the control's data (as
    the platform gave it back), who clicked, and the conversation of the message it sits on."""

    data: str
    user: Author
    key: ConversationKey


@dataclass(frozen=True, slots=True)
class Action:
    """A click the core decoded: what it asks for, by whom, where."""

    press: Press
    user: Author
    key: ConversationKey


def stop_press(turn_id: int = 0) -> Press:
    """Stop ``turn_id``; 0: whatever the conversation is streaming (Slack's message shortcut)."""
    return Press(ControlKind.STOP, turn_id)


def streaming_controls(turn_id: int) -> Controls:
    return ((Button("⏹ Stop", stop_press(turn_id), "danger"),),)


def answer_controls(turn_id: int) -> Controls:
    """The core's controls on a finished answer: regenerate and feedback (features add
    their rows before these)."""
    return (
        (
            Button("🔄 Regenerate", Press(ControlKind.REGENERATE, turn_id)),
            Button("👍", Press(ControlKind.FEEDBACK, turn_id, ("1",))),
            Button("👎", Press(ControlKind.FEEDBACK, turn_id, ("-1",))),
        ),
    )
