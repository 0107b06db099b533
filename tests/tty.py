"""`bot chat` in a real pseudo-terminal, seen as a user sees it.

pexpect spawns the process on a pty; a thread reads what it writes and feeds pyte (a VT100
emulator), so tests assert on the screen and its scrollback, not on escape sequences, and
wait for what should appear (``until``), never for a fixed time.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pexpect
import pyte

from tests.polling import eventually
from tests.processes import ROOT

ENTER, ESC, CTRL_C, CTRL_D, ALT_ENTER, TAB, UP = "\r", "\x1b", "\x03", "\x04", "\x1b\r", "\t", "\x1b[A"


class Tty:
    def __init__(self, *args: str, env: dict[str, str], cwd: Path, rows: int = 30, columns: int = 90) -> None:
        self.screen = pyte.HistoryScreen(columns, rows, history=2000)
        self.stream = pyte.Stream(self.screen)
        self.raw: list[str] = []
        self._lock = threading.Lock()
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "bot", "chat", *args],
            env={**env, "TERM": "xterm-256color"},
            cwd=str(cwd),
            dimensions=(rows, columns),
            encoding="utf-8",
            codec_errors="replace",
        )
        # prompt_toolkit asks where the cursor is (CPR); the emulator answers like a terminal.
        self.screen.write_process_input = self.child.send
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = self.child.read_nonblocking(4096, timeout=None)
            except (pexpect.EOF, OSError):
                return
            with self._lock:
                self.raw.append(data)
                self.stream.feed(data)

    # --- what the user sees ---
    def lines(self) -> list[str]:
        """The scrollback and the screen, top to bottom, trailing spaces removed."""
        with self._lock:
            history = [
                "".join(line[x].data for x in range(self.screen.columns)).rstrip() for line in self.screen.history.top
            ]
            return history + [line.rstrip() for line in self.screen.display]

    def text(self) -> str:
        return "\n".join(self.lines())

    def screen_text(self) -> str:
        with self._lock:
            return "\n".join(line.rstrip() for line in self.screen.display)

    async def until(self, check: Callable[[str], object], timeout: float = 20.0) -> object:
        """Wait until ``check(everything shown)`` is true."""
        try:
            return await eventually(lambda: check(self.text()), timeout)
        except AssertionError:
            raise AssertionError(f"not shown in time; the terminal shows:\n{self.text()}") from None

    async def shows(self, text: str, timeout: float = 20.0) -> None:
        await self.until(lambda seen: text in seen, timeout)

    # --- what the user does ---
    def type(self, keys: str) -> None:
        self.child.send(keys)

    def line(self, text: str) -> None:
        self.child.send(text + ENTER)

    async def exit_status(self, timeout: float = 30.0) -> int:
        await eventually(lambda: not self.child.isalive(), timeout)
        self._reader.join(timeout=5)
        self.child.close()
        assert self.child.exitstatus is not None, f"killed by signal {self.child.signalstatus}"
        return self.child.exitstatus

    def kill(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


def bot_tty(*args: str, env: dict[str, str], cwd: Path = ROOT, **size: int) -> Tty:
    return Tty(*args, env=env, cwd=cwd, **size)
