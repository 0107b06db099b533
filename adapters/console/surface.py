"""The terminal as a reply surface: what the core writes goes to a ``Display`` (plain text
when piped, a live Markdown view in an interactive terminal); the surface keeps what every
message says now, the controls each offers, and how every exchange ended (the exit status).
Tool calls show as a line each time one starts, waits, ends or fails (interactive only:
piped output is the answer alone).

The buttons a feature offers (an admin's Approve / Deny, a character's Save) have no
command of their own: the newest message offering any lends them ``/press N`` or
``/press LABEL``, shown interactively as one line under that message."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, TextIO

from bot.platform import (
    Button,
    Choice,
    ControlKind,
    Controls,
    Ending,
    MessageRef,
    ReplySurface,
    Step,
    SurfaceLimits,
    Write,
)

_STATE_WORDS = {"pending": "waiting", "running": "running", "done": "done", "error": "failed"}


def offered_buttons(controls: Controls) -> list[Button]:
    """The buttons of ``controls`` that only ``/press`` reaches: all but the core's own
    (Stop, Regenerate, feedback: /stop, /regen, /good, /bad) and choices (a copy variant's
    refinements: /refine N ACTION). Which feature they belong to is not ours to know."""
    core = set(ControlKind)
    return [b for row in controls if not isinstance(row, Choice) for b in row if b.press.kind not in core]


def offer_line(buttons: Sequence[Button]) -> str:
    """How to press each of ``buttons``, in one line: ``▸ /press 1 ✅ Approve · /press 2 ✖ Deny``."""
    return "▸ " + " · ".join(f"/press {n} {b.label}" for n, b in enumerate(buttons, 1))


class Display(Protocol):
    """Where the terminal shows the bot's messages."""

    def show(self, message_id: str, text: str, write: Write) -> None:
        """Message ``message_id`` reads ``text`` now (a new one, or one growing)."""

    def status(self, text: str) -> None:
        """A transient status ("thinking…"); "" clears it."""

    def step(self, line: str) -> bool:
        """A tool call's progress, one line; False: this display does not show them."""


class ConsoleSurface(ReplySurface):
    def __init__(self, display: Display, *, interval: float = 0.05, files: Path | None = None) -> None:
        self.display = display
        self.files = files or Path.cwd()  # where files the bot sends (an exported card) are written
        self.limits = SurfaceLimits(max_chars=1_000_000, edit_interval=interval)
        self.shown: dict[str, str] = {}  # every message written, in order: its text now
        self.controls: dict[str, Controls] = {}  # the controls each message offers now
        self.endings: list[Ending] = []  # how each exchange ended, in order
        self._steps: dict[tuple[int, str], tuple[str, str]] = {}  # (turn, step id) → (state, detail) shown
        self._count = 0
        # Set by every write: a piped run waiting on an answer looks whether it now offers buttons.
        self.written = asyncio.Event()

    async def post(self, text: str, write: Write) -> MessageRef:
        self._count += 1
        ref = MessageRef(str(self._count))
        self.shown[ref.id] = ""
        return await self.edit(ref, text, write)

    async def edit(self, ref: MessageRef, text: str, write: Write) -> MessageRef:
        self.shown[ref.id] = text
        self.controls[ref.id] = write.controls
        if write.ending is not None:
            self.endings.append(write.ending)
        self.display.show(ref.id, text, write)
        self.written.set()
        return ref

    def offer(self) -> list[Button]:
        """The buttons ``/press`` reaches: those of the newest message offering any (an
        approval settled loses its buttons, and with them its place here)."""
        for controls in reversed(list(self.controls.values())):
            if buttons := offered_buttons(controls):
                return buttons
        return []

    async def send_file(self, name: str, data: bytes, mime: str, caption: str = "") -> MessageRef:
        """Write ``data`` to ``files``/``name`` (never over an existing file: "Mochi (2).json")
        and say where, in the bot's voice."""
        self.files.mkdir(parents=True, exist_ok=True)
        target, stem, suffix, n = self.files / name, Path(name).stem, Path(name).suffix, 1
        while target.exists():
            n += 1
            target = self.files / f"{stem} ({n}){suffix}"
        target.write_bytes(data)
        return await self.post(
            f"{caption}: saved to {target}" if caption else f"saved {target}", Write(0, final=True, notice=True)
        )

    async def show_steps(self, turn_id: int, steps: Sequence[Step]) -> bool:
        """A line for each step whose state or detail changed (False: the display declines,
        and the core puts the steps on the status line instead)."""
        for step in steps:
            seen = (step.state, step.detail)
            if self._steps.get((turn_id, step.id)) == seen:
                continue
            line = f"⚙ {step.title}: {_STATE_WORDS[step.state]}"
            if step.detail and step.state in ("pending", "error"):
                line += f" ({step.detail})"
            if not self.display.step(line):
                return False
            self._steps[(turn_id, step.id)] = seen
        return True

    async def set_status(self, status: str) -> None:
        self.display.status(status)


class PlainDisplay:
    """Piped output: each message printed once, what an edit adds appended; a terminal
    can't rewrite what scrolled away, so an edit that is not an extension prints the
    whole text again. No statuses, no labels: only what the bot says."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._printed: dict[str, str] = {}

    def show(self, message_id: str, text: str, write: Write) -> None:
        printed = self._printed.get(message_id, "")
        self.out.write(text[len(printed) :] if text.startswith(printed) else "\n" + text)
        if write.final:
            self.out.write("\n")
        self.out.flush()
        self._printed[message_id] = text

    def status(self, text: str) -> None:
        return None

    def step(self, line: str) -> bool:
        return False  # piped output is the answer alone


class SilentDisplay:
    """Shows nothing (what ``--new`` asks of the core, in a pipe)."""

    def show(self, message_id: str, text: str, write: Write) -> None:
        return None

    def status(self, text: str) -> None:
        return None

    def step(self, line: str) -> bool:
        return False
