"""A terminal as a reply surface: streamed text is printed as it grows; a file (an exported
card) is written to a directory and its path printed."""
from __future__ import annotations

from pathlib import Path
from typing import TextIO

from bot.platform import Controls, MessageRef, ReplySurface, SurfaceLimits, Write


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
        if text.startswith(shown):
            self.out.write(text[len(shown):])
        else:
            self.out.write("\n" + text)
        if write.final:
            self.out.write("\n")
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

    def _clear_status(self) -> None:
        if self._status and self.status_out is not None:
            self.status_out.write("\r\x1b[K")
            self.status_out.flush()
        self._status = ""
