"""A terminal as a reply surface: streamed text is printed as it grows; a file (an exported
card) is written to a directory and its path printed; a tool call's step is a dim line each
time it starts, waits, ends or fails (interactive sessions only: piped output is the answer
alone)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from bot.platform import Controls, MessageRef, ReplySurface, Step, SurfaceLimits, Write

_STATE_WORDS = {"pending": "waiting", "running": "running", "done": "done", "error": "failed"}


class ConsoleSurface(ReplySurface):
    """Prints each message once, appending what an edit adds; a terminal can't rewrite
    what scrolled away, so an edit that is not an extension prints the whole text again."""

    def __init__(self, out: TextIO, *, status_out: TextIO | None = None, interval: float = 0.05,
                 files: Path | None = None) -> None:
        self.out = out
        self.status_out = status_out  # None: statuses are not shown (piped output)
        self.files = files or Path.cwd()  # where files the bot sends are written
        self.limits = SurfaceLimits(max_chars=1_000_000, edit_interval=interval)
        self.shown: dict[str, str] = {}  # every message written, in order: its text now
        self.controls: dict[str, Controls] = {}  # the controls each message offers now
        self._count = 0
        self._status = ""
        self._steps: dict[tuple[int, str], tuple[str, str]] = {}  # (turn, step id) → (state, detail) printed
        self._line_open = False  # the answer's text left the cursor mid-line

    async def post(self, text: str, write: Write) -> MessageRef:
        self._clear_status()
        self._count += 1
        ref = MessageRef(str(self._count))
        self.shown[ref.id] = ""
        await self.edit(ref, text, write)
        return ref

    async def edit(self, ref: MessageRef, text: str, write: Write) -> MessageRef:
        self._clear_status()
        shown = self.shown.get(ref.id, "")
        written = text[len(shown):] if text.startswith(shown) else "\n" + text
        self.out.write(written)
        if write.final:
            self.out.write("\n")
            written = "\n"
        if written:
            self._line_open = not written.endswith("\n")
        self.out.flush()
        self.shown[ref.id] = text
        self.controls[ref.id] = write.controls
        return ref

    async def send_file(self, name: str, data: bytes, mime: str, caption: str = "") -> MessageRef:
        """Write ``data`` to ``files``/``name`` (never over an existing file: "Mochi (2).json")."""
        self._clear_status()
        self.files.mkdir(parents=True, exist_ok=True)
        target, stem, suffix, n = self.files / name, Path(name).stem, Path(name).suffix, 1
        while target.exists():
            n += 1
            target = self.files / f"{stem} ({n}){suffix}"
        target.write_bytes(data)
        self._count += 1
        ref = MessageRef(str(self._count))
        text = f"{caption}: saved to {target}" if caption else f"saved {target}"
        self.out.write(text + "\n")
        self.out.flush()
        self.shown[ref.id] = text
        return ref

    async def set_status(self, status: str) -> None:
        if self.status_out is None:
            return
        self._clear_status()
        if status:
            self.status_out.write(f"\x1b[2m({status})\x1b[0m")
            self.status_out.flush()
            self._status = status

    async def show_steps(self, turn_id: int, steps: Sequence[Step]) -> bool:
        if self.status_out is None:
            return False
        for step in steps:
            seen = (step.state, step.detail)
            if self._steps.get((turn_id, step.id)) == seen:
                continue
            self._steps[(turn_id, step.id)] = seen
            self._clear_status()
            line = f"⚙ {step.title}: {_STATE_WORDS[step.state]}"
            if step.detail and step.state in ("pending", "error"):
                line += f" ({step.detail})"
            lead = "\n" if self._line_open and self.status_out is self.out else ""
            self.status_out.write(f"{lead}\x1b[2m{line}\x1b[0m\n")
            self._line_open = False
        self.status_out.flush()
        return True

    def _clear_status(self) -> None:
        if self._status and self.status_out is not None:
            self.status_out.write("\r\x1b[K")
            self.status_out.flush()
        self._status = ""
