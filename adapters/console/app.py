"""``bot chat`` in a terminal: prompt_toolkit reads your lines while answers stream.

The input stays live the whole time. Enter sends; Alt-Enter (or Ctrl-J) starts a new line,
and pasted text keeps its lines. ↑/↓ walk the history, kept across runs; Ctrl-R searches
it; Tab completes commands and their arguments (style ids, character names: whatever the
commands offer). Esc or ``/stop`` stops the answer; Ctrl-C stops it too, and a second
Ctrl-C quits (Ctrl-D on an empty line quits at once). A line sent while an answer is being
written waits behind it and is answered next, as its own turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import sys
from collections.abc import AsyncGenerator, Callable, Iterable
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import ANSI
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.patch_stdout import StdoutProxy

from adapters.console.chat import ConsoleAdapter, Conversation, ExitCode, conversation_key
from adapters.console.live import DIM, GUTTER, RESET, YOU, LiveDisplay
from bot.platform import Author, ConversationKey, Inbox

PROMPT = "you› "
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
CYAN, YELLOW = "\x1b[36m", "\x1b[33m"
# Sources of completions the core does not know (the terminal's own commands' arguments).
LocalWords = Callable[[str, list[str]], Iterable[str]]


class CommandCompleter(Completer):
    """``/`` + the registered commands and the terminal's own; after a command, the words
    its completer offers (through the inbox: styles, characters…; ``local_words`` for the
    terminal's own commands: the labels ``/press`` takes)."""

    def __init__(
        self, inbox: Inbox, key: ConversationKey, local: dict[str, str], local_words: LocalWords | None = None
    ) -> None:
        self.inbox = inbox
        self.key = key
        self.local = local  # name → summary
        self.local_words = local_words

    def _commands(self) -> dict[str, str]:
        found = {c.name: c.summary for c in self.inbox.commands if c.name != "start"}
        return {**found, **self.local}

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor
        if not text.startswith("/") or " " in text or "\n" in text:
            return
        typed = text[1:].lower()
        for name, summary in sorted(self._commands().items()):
            if name.startswith(typed):
                yield Completion(f"/{name}", start_position=-len(text), display_meta=summary)

    async def get_completions_async(
        self, document: Document, complete_event: CompleteEvent
    ) -> AsyncGenerator[Completion, None]:
        text = document.text_before_cursor
        if not text.startswith("/") or "\n" in text:
            return
        if " " not in text:
            for completion in self.get_completions(document, complete_event):
                yield completion
            return
        name, _, args = text[1:].partition(" ")
        typed = "" if not args or args[-1].isspace() else args.split()[-1]
        if name.lower() in self.local:
            before = args.split()[:-1] if typed else args.split()
            for word in self.local_words(name.lower(), before) if self.local_words is not None else ():
                if word.startswith(typed.lower()):
                    yield Completion(word, start_position=-len(typed))
            return
        try:
            words = await self.inbox.complete(self.key, name.lower(), args)
        except Exception:
            logging.getLogger(__name__).warning("completing /%s failed", name, exc_info=True)
            return
        for word in words:
            yield Completion(word, start_position=-len(typed))


class WarningCount(logging.Handler):
    """Counts what is logged at WARNING and above (the records themselves go to the log
    file), so the status bar can say so in one dim line."""

    def __init__(self, changed: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.changed = changed
        self._loop = asyncio.get_running_loop()

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        try:
            self._loop.call_soon_threadsafe(self.changed)
        except RuntimeError:  # the loop closed: nothing to redraw
            pass


class Terminal:
    """The interactive chat: the prompt, the live view, the keys."""

    def __init__(
        self, adapter: ConsoleAdapter, key: ConversationKey, author: Author, *, history: History, log_file: Path | None
    ) -> None:
        self.adapter = adapter
        self.log_file = log_file
        self.chat = Conversation(adapter, key, author, say=self._say)
        self._armed = False  # Ctrl-C was pressed: another one quits
        self._frame = 0
        self.session: PromptSession[str] = PromptSession(
            history=history,
            auto_suggest=AutoSuggestFromHistory(),
            enable_history_search=False,
            completer=CommandCompleter(
                adapter.inbox, key, {n: s for n, (_, s) in Conversation.LOCAL.items()}, self.chat.arguments
            ),
            complete_while_typing=Condition(lambda: self.session.default_buffer.text.startswith("/")),
            key_bindings=self._keys(),
            erase_when_done=True,
            refresh_interval=0.1,
            reserve_space_for_menu=6,
            prompt_continuation=lambda width, line, wrap: " " * GUTTER,
            mouse_support=False,
        )
        self.session.default_buffer.on_text_changed += lambda _buffer: self._disarm()
        self.display: LiveDisplay | None = None
        self.warnings: WarningCount | None = None

    # --- what is drawn ---
    def _columns(self) -> int:
        return self.session.output.get_size().columns

    def _message(self) -> ANSI:
        """Above the input: what is still being written, then one status line."""
        assert self.display is not None
        rows = self.session.output.get_size().rows
        live = self.display.live_text(max(3, rows - 8))
        status = self._status_line()
        return ANSI((live + "\n\n" if live else "") + (status + "\n" if status else "") + YOU)

    def _status_line(self) -> str:
        assert self.display is not None
        parts = []
        status = self.display.status_text()
        if self.display.answering or self.chat.waiting:
            self._frame = (self._frame + 1) % len(SPINNER)
            parts.append(f"{CYAN}{SPINNER[self._frame]} {status or 'answering…'}{RESET}{DIM}   Esc to stop{RESET}")
        elif status:
            parts.append(f"{DIM}{status}{RESET}")
        if self.warnings is not None and self.warnings.count:
            where = f" in {_home(self.log_file)}" if self.log_file else ""
            parts.append(f"{YELLOW}⚠ {self.warnings.count} warning(s) logged{where}{RESET}")
        return "   ".join(parts)

    def _redraw(self) -> None:
        app = self.session.app
        if app.is_running:
            app.invalidate()

    def _say(self, text: str) -> None:
        assert self.display is not None
        self.display.note(text)

    # --- keys ---
    def _keys(self) -> KeyBindings:
        keys = KeyBindings()
        streaming = Condition(lambda: self.display is not None and (self.display.answering or self.chat.waiting))

        @keys.add("escape", filter=streaming)
        def _stop(event: KeyPressEvent) -> None:
            self.chat.stop()
            self._toast("Stopping…")

        @keys.add("c-c")
        def _interrupt(event: KeyPressEvent) -> None:
            buffer = event.current_buffer
            if self._armed:
                event.app.exit(exception=EOFError())
            elif self.display is not None and (self.display.answering or self.chat.waiting):
                self.chat.stop()
                self._arm("Stopping… (Ctrl-C again quits)")
            elif buffer.text:
                buffer.reset()
            else:
                self._arm("Press Ctrl-C again to quit (or Ctrl-D).")

        @keys.add("escape", "enter")
        @keys.add("c-j")
        def _newline(event: KeyPressEvent) -> None:
            event.current_buffer.insert_text("\n")

        return keys

    def _arm(self, hint: str) -> None:
        self._toast(hint)
        self._armed = True

    def _disarm(self) -> None:
        self._armed = False

    def _toast(self, text: str) -> None:
        if self.display is not None:
            self.display.toast(text)

    # --- the loop ---
    async def run(self, *, new: bool, quit_event: asyncio.Event) -> ExitCode:
        # What goes to the scrollback is printed above the prompt (prompt_toolkit's proxy),
        # promptly: the live area must not run ahead of it for long. Stray prints go there too.
        proxy = StdoutProxy(raw=True, sleep_between_writes=0.02)
        with proxy, contextlib.redirect_stdout(proxy), contextlib.redirect_stderr(proxy):
            self.display = LiveDisplay(proxy, width=self._columns, redraw=self._redraw)
            self.adapter.bind(self.display)
            self.warnings = WarningCount(self._redraw)
            logging.getLogger().addHandler(self.warnings)
            try:
                await self.adapter.start()
                self._banner()
                if new:
                    await self.chat.send("/new")
                await self._loop(quit_event)
            finally:
                logging.getLogger().removeHandler(self.warnings)
        # The prompt is gone: what is still written (the end of a stopped answer) prints plainly.
        self.display.out = sys.stdout
        if self.display.answering or self.chat.waiting:
            self.chat.stop()  # what is being written ends as stopped (the caller waits for it)
        return ExitCode.OK

    async def _loop(self, quit_event: asyncio.Event) -> None:
        quitting = asyncio.ensure_future(quit_event.wait())
        try:
            while True:
                self._armed = False
                asking = asyncio.ensure_future(self.session.prompt_async(self._message, handle_sigint=False))
                await asyncio.wait([asking, quitting], return_when=asyncio.FIRST_COMPLETED)
                if quitting.done():
                    if self.session.app.is_running:
                        self.session.app.exit(exception=EOFError())
                    await asyncio.gather(asking, return_exceptions=True)
                    return
                try:
                    text = asking.result()
                except (EOFError, KeyboardInterrupt):
                    return
                if not text.strip():
                    continue
                if not self._line(text):
                    return
        finally:
            quitting.cancel()

    def _line(self, text: str) -> bool:
        assert self.display is not None
        word = text.strip().split(maxsplit=1)[0].lower()
        if word in ("/quit", "/exit"):
            return False
        if word != "/stop":  # a stop acts at once; its effect on the answer says enough
            # A message typed during an answer waits behind it; a command acts at once.
            queued = not word.startswith("/") and (self.display.answering or self.chat.waiting)
            self.display.user_line(text, queued=queued)
        if word == "/help":
            self.display.note(self._local_help())
        return self.chat.handle(text)

    def _banner(self) -> None:
        assert self.display is not None
        key = self.chat.key
        where = f"conversation “{key.thread}”" if key.thread else "your conversation"
        lines = [
            f"Chatting in {where}. Enter sends, Alt-Enter adds a line; /help lists commands; Esc stops an "
            "answer; Ctrl-D quits."
        ]
        if self.log_file is not None:
            lines.append(f"Logs go to {_home(self.log_file)}.")
        self.display.note("\n".join(lines))

    def _local_help(self) -> str:
        rows = [f"/{name}{' ' + arg if arg else ''} — {summary}" for name, (arg, summary) in Conversation.LOCAL.items()]
        return (
            "In this terminal:\n" + "\n".join(rows) + "\nKeys: Enter sends · Alt-Enter or Ctrl-J new line · "
            "↑/↓ history · Ctrl-R search · Tab completes · Esc or Ctrl-C stops an answer · "
            "Ctrl-C twice or Ctrl-D quits"
        )


def _home(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def open_history(path: Path | None) -> History:
    """Your lines across runs (the file is yours alone: it holds what you typed)."""
    if path is None:
        return InMemoryHistory()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600, exist_ok=True)
    return FileHistory(str(path))


async def run_terminal(
    adapter: ConsoleAdapter,
    *,
    user: str | None = None,
    conversation: str = "",
    new: bool = False,
    history_file: Path | None = None,
    log_file: Path | None = None,
    quit_event: asyncio.Event | None = None,
) -> ExitCode:
    user = user or getpass.getuser()
    terminal = Terminal(
        adapter,
        conversation_key(user, conversation),
        Author(user, user),
        history=open_history(history_file),
        log_file=log_file,
    )
    return await terminal.run(new=new, quit_event=quit_event or asyncio.Event())
