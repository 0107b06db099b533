"""The interactive terminal's view of the conversation.

What is finished goes to the scrollback once, rendered (Markdown through rich), behind a
``you›`` / ``bot›`` gutter: your lines, the bot's notices, and an answer's blocks as soon as
each block is complete. What is still changing lives in the live area above the input:
the block being written, and whatever waits behind the answer (a line you typed meanwhile,
queued, is shown there and reaches the scrollback after the answer, as its own turn).
A message offering a feature's buttons carries one dim line under it saying how to press
each (``▸ /press 1 ✅ Approve · /press 2 ✖ Deny``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from adapters.console.render import render_markdown, render_plain, settled_length, with_gutter
from adapters.console.surface import offer_line, offered_buttons
from bot.platform import Ending, Write

GUTTER = 5
YOU = "\x1b[1;32myou›\x1b[0m "
BOT = "\x1b[1;36mbot›\x1b[0m "
BOT_NOTICE = "\x1b[2;36mbot›\x1b[0m "
BOT_PROBLEM = "\x1b[1;33mbot›\x1b[0m "
DIM, RESET = "\x1b[2m", "\x1b[0m"
TOAST_SECONDS = 4.0

EntryKind = Literal["user", "answer", "notice", "note"]


@dataclass
class _Entry:
    kind: EntryKind
    message_id: str  # the surface's message id ("" for lines of our own)
    text: str = ""
    final: bool = False
    problem: bool = False  # a notice that ends an exchange badly (failed, refused)
    committed: str = ""  # the prefix of ``text`` already in the scrollback
    queued: bool = False  # a line typed while an answer was being written
    offer: str = ""  # how to press the buttons it offers ("" when it offers none)

    def label(self) -> str:
        if self.kind == "user":
            return YOU
        if self.kind == "answer":
            return BOT
        return BOT_PROBLEM if self.problem else BOT_NOTICE


class Scrollback(Protocol):
    """Where finished blocks go: a text stream (stdout, or prompt_toolkit's proxy for it)."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class LiveDisplay:
    """``out`` is the scrollback (under prompt_toolkit's ``patch_stdout``: printed above
    the input); ``redraw`` asks the application to draw the live area and status again."""

    def __init__(
        self,
        out: Scrollback,
        *,
        width: Callable[[], int],
        redraw: Callable[[], None] = lambda: None,
        color: bool = True,
    ) -> None:
        self.out = out
        self.width = width
        self.redraw = redraw
        self.color = color
        self._entries: list[_Entry] = []
        self._status = ""
        self._toast = ""
        self._toast_until = 0.0
        self._live_cache: tuple[object, str] | None = None

    # --- what the core writes (Display) ---
    def show(self, message_id: str, text: str, write: Write) -> None:
        entry = next((e for e in self._entries if e.message_id == message_id), None)
        if entry is None:
            entry = _Entry("notice" if write.notice else "answer", message_id)
            self._entries.append(entry)
        entry.text, entry.final = text, write.final
        entry.problem = write.notice and write.ending in (Ending.FAILED, Ending.REFUSED)
        buttons = offered_buttons(write.controls)
        entry.offer = offer_line(buttons) if buttons else ""
        if write.final:
            self._status = ""  # the core clears it beside the final write
        self._flush()

    def status(self, text: str) -> None:
        self._status = text
        self.redraw()

    # --- what the terminal itself shows ---
    def user_line(self, text: str, *, queued: bool = False) -> None:
        """A line the user sent (held behind an answer being written, if any)."""
        self._entries.append(_Entry("user", "", text, final=True, queued=queued))
        self._flush()

    def note(self, text: str) -> None:
        """A short line of the terminal's own (an attachment taken, local help), dimmed."""
        self._entries.append(_Entry("note", "", text, final=True))
        self._flush()

    def step(self, line: str) -> bool:
        """A tool call's progress ("⚙ market size: running"), a dim line of its own."""
        self.note(line)
        return True

    def toast(self, text: str) -> None:
        """A transient line in the status bar (a click's acknowledgement, a hint)."""
        self._toast, self._toast_until = text, time.monotonic() + TOAST_SECONDS
        self.redraw()

    @property
    def answering(self) -> bool:
        """An answer is being written (or the bot shows it is working on one)."""
        return bool(self._status) or any(e.kind == "answer" and not e.final for e in self._entries)

    # --- the scrollback ---
    def _flush(self) -> None:
        while self._entries:
            head = self._entries[0]
            if head.final:
                self._commit(head, len(head.text), last=True)
                self._entries.pop(0)
                continue
            if head.kind == "answer":
                settled = settled_length(head.text)
                if settled > len(head.committed):
                    self._commit(head, settled, last=False)
            break
        self.redraw()

    def _commit(self, entry: _Entry, upto: int, *, last: bool) -> None:
        if not entry.text.startswith(entry.committed):  # rewritten (a copy answer's variants): anew
            entry.committed = ""
        chunk = entry.text[len(entry.committed) : upto]
        if chunk.strip():
            self.out.write(
                ("\n" if entry.committed else "") + self._rendered(entry, chunk, labelled=not entry.committed) + "\n"
            )
        entry.committed = entry.text[:upto]
        if last:
            if entry.offer:
                self.out.write(self._offer(entry) + "\n")
            self.out.write("\n")
        self.out.flush()

    def _rendered(self, entry: _Entry, text: str, *, labelled: bool, queued: bool = False) -> str:
        width = self.width() - GUTTER
        if entry.kind == "user":
            body = render_plain(text, width, color=self.color)
            if queued:
                note = "(queued: sent after this answer)"
                body += f"  {DIM}{note}{RESET}" if self.color else f"  {note}"
        elif entry.kind == "note":
            body = render_plain(text, width, "dim", color=self.color)
        else:
            body = render_markdown(text, width, color=self.color)
            if entry.kind == "notice" and not entry.problem and self.color:
                body = DIM + body.replace(RESET, RESET + DIM) + RESET
        label = entry.label() if labelled else " " * GUTTER
        if entry.kind == "note":
            label = " " * GUTTER
        return with_gutter(body, label if self.color else _plain_label(entry, labelled), GUTTER)

    def _offer(self, entry: _Entry) -> str:
        """The line under a message that offers buttons: dim, in the gutter's column."""
        line = render_plain(entry.offer, self.width() - GUTTER, "dim", color=self.color)
        return with_gutter(line, " " * GUTTER, GUTTER)

    # --- the live area and the status bar (drawn by the application) ---
    def live_text(self, max_lines: int) -> str:
        """What is not in the scrollback yet, rendered: its last ``max_lines`` lines."""
        key = (tuple((e.text, e.committed, e.final, e.offer) for e in self._entries), self.width(), max_lines)
        if self._live_cache is not None and self._live_cache[0] == key:
            return self._live_cache[1]
        parts = []
        for entry in self._entries:
            rest = entry.text[len(entry.committed) :] if entry.text.startswith(entry.committed) else entry.text
            if rest.strip():
                rendered = self._rendered(entry, rest, labelled=not entry.committed, queued=entry.queued)
                if entry.offer:
                    rendered += "\n" + self._offer(entry)
                parts.append(("\n" if entry.committed else "") + rendered)
        lines = "\n\n".join(parts).split("\n") if parts else []
        text = "\n".join(lines[-max_lines:]) if max_lines > 0 else ""
        self._live_cache = (key, text)
        return text

    def status_text(self) -> str:
        """The status bar: the bot's status, or a recent toast ("" when there is nothing)."""
        if self._toast and time.monotonic() > self._toast_until:
            self._toast = ""
        return self._toast or self._status


def _plain_label(entry: _Entry, labelled: bool) -> str:
    if not labelled or entry.kind == "note":
        return " " * GUTTER
    return "you› " if entry.kind == "user" else "bot› "
