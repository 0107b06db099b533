"""``bot chat``: read lines, answer each through the core; works interactively and piped."""
from __future__ import annotations

import asyncio
import getpass
import mimetypes
import sys
import uuid
from pathlib import Path
from typing import TextIO

from adapters.console.settings import ConsoleSettings
from adapters.console.surface import ConsoleSurface
from bot.platform import (
    Arrival,
    Attachment,
    Author,
    Click,
    ConversationKey,
    Inbox,
    IncomingMessage,
    Platform,
    ReplySurface,
)

MAX_ATTACHMENT = 20 * 1024 * 1024
PLATFORM = "console"


def _check_attachment(path_text: str) -> tuple[Path | None, str]:
    path = Path(path_text).expanduser()
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
    """One terminal: the user's lines go in through the inbox, answers print as they grow."""

    name = PLATFORM

    settings: ConsoleSettings

    def __init__(self, settings: ConsoleSettings, inbox: Inbox) -> None:
        super().__init__(settings, inbox)
        self.stdout: TextIO = sys.stdout
        self.files = Path(settings.files_dir).expanduser() if settings.files_dir else None
        self.surface = ConsoleSurface(self.stdout, files=self.files)
        self._count = 0

    def bind(self, stdout: TextIO, *, interactive: bool) -> None:
        self.stdout = stdout
        self.surface = ConsoleSurface(stdout, status_out=stdout if interactive else None, files=self.files)

    async def start(self) -> None:
        self.inbox.attach(self)

    async def stop(self) -> None:
        return None

    def surface_for(self, key: ConversationKey, *, reply_to: str = "", user: str = "") -> ReplySurface | None:
        return self.surface if key.platform == PLATFORM else None

    def send(self, key: ConversationKey, author: Author, text: str, files: list[Path] | None = None, *,
             event_id: str = "") -> asyncio.Task[None]:
        """Hand one line (and the files attached before it, read only once access is
        granted) to the core; ``event_id`` names the line, so it is taken once."""
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
            return IncomingMessage(key=key, author=author, text=text, message_id=message_id,
                                   attachments=attachments, notes=notes)

        return self.inbox.receive(Arrival(key, event_id or uuid.uuid4().hex, author, self.surface), build)

    def click(self, key: ConversationKey, author: Author, data: str) -> asyncio.Task[None]:
        """A control chosen in the terminal (its data, as the surface showed it)."""
        return self.inbox.click(Click(data, author, key), self.surface)


async def run_chat(adapter: ConsoleAdapter, *, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout,
                   user: str | None = None) -> None:
    interactive = stdin.isatty()
    user = user or getpass.getuser()
    key = ConversationKey(PLATFORM, "local", user)
    author = Author(user, user)
    adapter.bind(stdout, interactive=interactive)
    await adapter.start()
    pending: list[Path] = []
    loop = asyncio.get_running_loop()
    if interactive:
        stdout.write("Chat with the bot. /new starts over, /attach PATH adds a file, Ctrl-D quits.\n")
    while True:
        if interactive:
            stdout.write("\nyou> ")
            stdout.flush()
        line = await loop.run_in_executor(None, stdin.readline)
        if not line:
            break
        text = line.rstrip("\n")
        if not text.strip():
            continue
        if text.startswith("/attach"):
            path, message = _check_attachment(text[len("/attach"):].strip())
            if path is not None:
                pending.append(path)
            stdout.write(message + "\n")
            continue
        if interactive:
            stdout.write("bot> ")
        await adapter.send(key, author, text, pending)
        pending = []
        stdout.flush()
