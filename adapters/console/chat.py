"""``bot chat``: the terminal as a platform. Lines go in through the inbox like any chat's
messages; answers come back on a ``ConsoleSurface``. Interactive in a terminal
(``adapters.console.app``), plain lines in and out when piped (this module)."""

from __future__ import annotations

import asyncio
import getpass
import mimetypes
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, TextIO

from adapters.console.settings import ConsoleSettings
from adapters.console.surface import ConsoleSurface, Display, PlainDisplay, SilentDisplay, offer_line
from bot.platform import (
    Ack,
    Arrival,
    Attachment,
    Author,
    Button,
    Choice,
    Click,
    ControlKind,
    ConversationKey,
    Ending,
    Inbox,
    IncomingMessage,
    Platform,
    Press,
    ReplySurface,
    stop_press,
)

MAX_ATTACHMENT = 20 * 1024 * 1024
PLATFORM = "console"


class ExitCode(IntEnum):
    """``bot chat``'s exit status (documented in docs/terminal.md)."""

    OK = 0  # every line was answered (or you quit)
    FAILED = 1  # an answer failed: key rejected, gateway down or out of credit, an error; an unknown command
    USAGE = 2  # bad arguments or settings (nothing was asked)
    REFUSED = 3  # not answered on purpose: a quota was reached, or you are not allowed here
    INTERRUPTED = 130  # a piped run stopped by Ctrl-C (SIGINT) or SIGTERM


def exit_code(endings: list[Ending]) -> ExitCode:
    """A failure wins over a refusal; a stopped answer is no failure (you asked for it)."""
    if Ending.FAILED in endings:
        return ExitCode.FAILED
    return ExitCode.REFUSED if Ending.REFUSED in endings else ExitCode.OK


def _check_attachment(path_text: str) -> tuple[Path | None, str]:
    path = Path(path_text).expanduser()
    if not path_text:
        return None, "usage: /attach PATH (the file goes with your next message)"
    if not path.is_file():
        return None, f"no such file: {path}"
    size = path.stat().st_size
    if size > MAX_ATTACHMENT:
        return None, f"{path.name} is {size // (1024 * 1024)} MB; the limit is 20 MB"
    return path, f"attached {path.name}; it goes with your next message"


def _read_attachment(path: Path) -> tuple[Attachment | None, str]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"{path.name} could not be read: {exc.strerror or exc}"
    if len(data) > MAX_ATTACHMENT:
        return None, f"{path.name} is over 20 MB"
    return Attachment(data, mimetypes.guess_type(path.name)[0] or "application/octet-stream", path.name), ""


class ConsoleAdapter(Platform):
    """One terminal: the user's lines go in through the inbox, answers show as they grow."""

    name = PLATFORM
    settings: ConsoleSettings

    def __init__(self, settings: ConsoleSettings, inbox: Inbox) -> None:
        super().__init__(settings, inbox)
        self.files = Path(settings.files_dir).expanduser() if settings.files_dir else None
        self.surface = ConsoleSurface(SilentDisplay(), files=self.files)
        self._count = 0

    def bind(self, display: Display) -> ConsoleSurface:
        """Show answers on ``display`` from now on."""
        self.surface = ConsoleSurface(display, files=self.files)
        return self.surface

    async def start(self) -> None:
        self.inbox.attach(self)

    async def stop(self) -> None:
        return None

    def surface_for(self, key: ConversationKey, *, reply_to: str = "", user: str = "") -> ReplySurface | None:
        return self.surface if key.platform == PLATFORM else None

    def send(
        self,
        key: ConversationKey,
        author: Author,
        text: str,
        files: list[Path] | None = None,
        *,
        event_id: str = "",
        surface: ReplySurface | None = None,
    ) -> asyncio.Task[None]:
        """Hand one line (and the files attached before it, read only once access is
        granted) to the core; ``event_id`` names the line, so it is taken once. The task
        ends once the line is answered (or, sent while an answer runs, once it is queued)."""
        self._count += 1
        message_id = f"console-{self._count}"

        async def build() -> IncomingMessage:
            attachments, notes = [], []
            for path in files or ():
                attachment, problem = _read_attachment(path)
                if attachment is not None:
                    attachments.append(attachment)
                else:
                    notes.append(problem)
            return IncomingMessage(
                key=key, author=author, text=text, message_id=message_id, attachments=attachments, notes=notes
            )

        return self.inbox.receive(Arrival(key, event_id or uuid.uuid4().hex, author, surface or self.surface), build)

    def click(
        self, key: ConversationKey, author: Author, data: str, acknowledge: Callable[[Ack], object] | None = None
    ) -> asyncio.Task[None]:
        """A control chosen in the terminal (its data, as the surface showed it);
        ``acknowledge`` gets what the clicker is told."""

        async def told(ack: Ack) -> None:
            if acknowledge is not None:
                acknowledge(ack)

        return self.inbox.click(Click(data, author, key), self.surface, told)


def newest_controls(surface: ConsoleSurface) -> list[Press]:
    """The controls of the newest message that offers any (the answer being written
    offers only Stop; a finished one Regenerate, feedback and its kind's own)."""
    for controls in reversed(list(surface.controls.values())):
        presses = [b.press for row in controls for b in (row.options if isinstance(row, Choice) else row)]
        if presses:
            return presses
    return []


_NOT_A_WORD = re.compile(r"[^\w]+")


def _words(text: str) -> str:
    """A label as ``/press`` matches it: its words, lower case, emoji and punctuation gone."""
    return " ".join(_NOT_A_WORD.sub(" ", text.casefold()).replace("_", " ").split())


def matching_buttons(buttons: list[Button], typed: str) -> list[Button]:
    """What ``/press typed`` may mean: its number, else the buttons whose label reads
    ``typed`` (``approve`` for "✅ Approve"), else those whose label starts so."""
    typed = typed.strip()
    if typed.isdigit():
        number = int(typed)
        return [buttons[number - 1]] if 1 <= number <= len(buttons) else []
    wanted = _words(typed)
    if not wanted:
        return []
    exact = [b for b in buttons if _words(b.label) == wanted]
    return exact or [b for b in buttons if _words(b.label).startswith(wanted)]


def press_is(text: str) -> bool:
    """``text`` is a ``/press`` line (a piped run lets one through while an answer waits)."""
    return text.strip().split(maxsplit=1)[:1] == ["/press"]


@dataclass
class Conversation:
    """One person's conversation in the terminal, and what each of their lines does:
    local commands (/attach, /regen, /good, /bad, /refine N ACTION, /press, /quit) act here
    or click a control the surface holds; everything else goes to the core (commands included)."""

    adapter: ConsoleAdapter
    key: ConversationKey
    author: Author
    say: Callable[[str], None]  # a line of the terminal's own (not the bot's)
    pending: list[Path] = field(default_factory=list)  # files for the next message
    tasks: set[asyncio.Task] = field(default_factory=set)

    LOCAL = {
        "attach": ("PATH", "add a file (image, PDF, document) to your next message"),
        "regen": ("", "a new answer to the last question (also /retry)"),
        "good": ("", "👍 the last answer"),
        "bad": ("", "👎 the last answer"),
        "press": ("N|LABEL", "press a button the newest message offers (an approval's Approve); alone: list them"),
        "quit": ("", "leave (also /exit, Ctrl-D)"),
    }
    ALIASES = {"retry": "regen", "exit": "quit"}

    @property
    def surface(self) -> ConsoleSurface:
        return self.adapter.surface

    def handle(self, text: str) -> bool:
        """Act on one line; False when it asks to quit."""
        word, _, rest = text.strip().partition(" ")
        name = self.ALIASES.get(word[1:].lower(), word[1:].lower()) if word.startswith("/") else ""
        if name == "quit":
            return False
        if name == "attach":
            path, message = _check_attachment(rest.strip())
            if path is not None:
                self.pending.append(path)
            self.say(message)
        elif name == "regen":
            self._press(lambda p: p.kind == ControlKind.REGENERATE, "There is no answer to regenerate yet.")
        elif name in ("good", "bad"):
            vote = "1" if name == "good" else "-1"
            self._press(
                lambda p: p.kind == ControlKind.FEEDBACK and p.args == (vote,), "There is no answer to rate yet."
            )
        elif name == "refine" and (press := self._refinement(rest)) is not None:
            self._click(press)
        elif name == "press":
            self._press_offered(rest)
        else:
            self.send(text)
        return True

    def send(self, text: str, *, surface: ReplySurface | None = None) -> asyncio.Task[None]:
        task = self.adapter.send(self.key, self.author, text, self.pending, surface=surface)
        self.pending = []
        self._track(task)
        return task

    def stop(self) -> None:
        """Stop whatever the conversation is writing (as its Stop control would)."""
        self._click(stop_press(0), quiet=True)

    def _refinement(self, args: str) -> Press | None:
        """``/refine 2 shorter`` on the newest copy answer's controls (None: let the core's
        /refine answer, which explains its use)."""
        number, _, action = args.strip().partition(" ")
        return next((p for p in newest_controls(self.surface) if p.args == (number, action.strip())), None)

    def _press(self, wanted: Callable[[Press], bool], missing: str) -> None:
        """Click the newest answer's control ``wanted`` picks (never an older answer's)."""
        controls = newest_controls(self.surface)
        press = next((p for p in controls if wanted(p)), None)
        if press is not None:
            self._click(press)
        elif any(p.kind == ControlKind.STOP for p in controls):
            self.say("The answer is still being written; try again once it is done (Esc stops it).")
        else:
            self.say(missing)

    def arguments(self, name: str, before: list[str]) -> list[str]:
        """What Tab offers after one of our own commands: the labels ``/press`` takes now."""
        if name != "press" or before:
            return []
        return [_words(b.label) for b in self.surface.offer() if _words(b.label)]

    def _press_offered(self, typed: str) -> None:
        """``/press N`` or ``/press LABEL`` on the newest message offering buttons; alone,
        what can be pressed. Never queued: an approval is answered while its turn waits."""
        buttons = self.surface.offer()
        if not buttons:
            self.say("Nothing to press: no message offers buttons now.")
            return
        if not typed.strip():
            self.say(offer_line(buttons))
            return
        found = matching_buttons(buttons, typed)
        if len(found) == 1:
            self._click(found[0].press)
        else:
            which = "Which one? " if found else f"No button “{typed.strip()}” here. "
            self.say(which + offer_line(found or buttons))

    def _click(self, press: Press, *, quiet: bool = False) -> None:
        told = None if quiet else self._acknowledged
        self._track(self.adapter.click(self.key, self.author, press.encode(), told))

    def _acknowledged(self, ack: Ack) -> None:
        self.say(ack.text)

    def _track(self, task: asyncio.Task) -> None:
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    @property
    def waiting(self) -> bool:
        """A line or a click is still being handled (its answer not written yet)."""
        return any(not t.done() for t in self.tasks)


def conversation_key(user: str, conversation: str = "") -> ConversationKey:
    """``--conversation NAME`` is a thread of the user's own: each name its own history."""
    return ConversationKey(PLATFORM, "local", user, conversation)


async def _plain(
    adapter: ConsoleAdapter, stdout: TextIO, user: str | None, conversation: str, new: bool
) -> Conversation:
    """The conversation, printing only what the bot says on ``stdout``."""
    user = user or getpass.getuser()

    def say(text: str) -> None:
        stdout.write(text + "\n")
        stdout.flush()

    chat = Conversation(adapter, conversation_key(user, conversation), Author(user, user), say=say)
    adapter.bind(PlainDisplay(stdout))
    await adapter.start()
    if new:  # a fresh thread, said nowhere: the output is only answers
        await chat.send("/new", surface=ConsoleSurface(SilentDisplay()))
    return chat


async def run_once(
    adapter: ConsoleAdapter,
    text: str,
    *,
    stdout: TextIO,
    user: str | None = None,
    conversation: str = "",
    new: bool = False,
    quit_event: asyncio.Event | None = None,
) -> ExitCode:
    """``bot chat "a question"``: one message (it may span lines), its answer, the status."""
    chat = await _plain(adapter, stdout, user, conversation, new)
    quitting = asyncio.ensure_future((quit_event or asyncio.Event()).wait())
    try:
        if chat.handle(text):
            work = asyncio.ensure_future(adapter.drain())
            await asyncio.wait([work, quitting], return_when=asyncio.FIRST_COMPLETED)
            if quitting.done():
                chat.stop()  # the answer being written ends as stopped
                return ExitCode.INTERRUPTED
    finally:
        quitting.cancel()
    return exit_code(chat.surface.endings)


async def run_chat(
    adapter: ConsoleAdapter,
    *,
    stdin: TextIO,
    stdout: TextIO,
    user: str | None = None,
    conversation: str = "",
    new: bool = False,
    quit_event: asyncio.Event | None = None,
) -> ExitCode:
    """Answer each line of ``stdin`` in turn, printing only what the bot says (a pipe).
    While an answer waits on a button (an admin's approval), the next line is read at once:
    a ``/press`` acts then, anything else waits for the answer as usual."""
    chat = await _plain(adapter, stdout, user, conversation, new)
    surface = chat.surface
    quit_event = quit_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    quitting = asyncio.ensure_future(quit_event.wait())
    reading: asyncio.Future[str] | None = None  # the next line, once asked for (a read can't be taken back)
    try:
        while True:
            if reading is None:
                reading = loop.run_in_executor(None, stdin.readline)
            asked: list[asyncio.Future[Any]] = [reading, quitting]
            await asyncio.wait(asked, return_when=asyncio.FIRST_COMPLETED)
            if quitting.done():
                return ExitCode.INTERRUPTED
            line, reading = reading.result(), None
            if not line:
                break
            text = line.rstrip("\n")
            if not text.strip():
                continue
            if not chat.handle(text):
                break
            work = asyncio.ensure_future(adapter.drain())
            while not work.done():
                surface.written.clear()
                if reading is None and surface.offer():
                    reading = loop.run_in_executor(None, stdin.readline)
                waiting: list[asyncio.Future[Any]] = [work, quitting]
                if reading is None:  # any write may bring buttons
                    waiting.append(asyncio.ensure_future(surface.written.wait()))
                elif not reading.done():  # a line read that is not a /press waits for the answer
                    waiting.append(reading)
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for future in waiting[2:]:
                    if future is not reading:
                        future.cancel()
                if quitting.done():
                    chat.stop()  # the answer being written ends as stopped
                    return ExitCode.INTERRUPTED
                if reading is not None and reading.done() and press_is(reading.result()):
                    chat.handle(reading.result().rstrip("\n"))
                    reading = None
    finally:
        quitting.cancel()
    await adapter.drain()
    return exit_code(surface.endings)
