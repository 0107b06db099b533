"""``bot chat``: read lines, answer each through the core; works interactively and piped."""
from __future__ import annotations

import asyncio
import getpass
import mimetypes
import sys
from pathlib import Path
from typing import TextIO

from adapters.console.surface import ConsoleSurface
from bot.core.service import ChatService
from bot.platform.messages import Attachment, Author, ConversationKey, IncomingMessage

MAX_ATTACHMENT = 20 * 1024 * 1024


def _read_attachment(path_text: str) -> tuple[Attachment | None, str]:
    path = Path(path_text).expanduser()
    if not path.is_file():
        return None, f"no such file: {path}"
    size = path.stat().st_size
    if size > MAX_ATTACHMENT:
        return None, f"{path.name} is {size // (1024 * 1024)} MB; the limit is 20 MB"
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Attachment(path.read_bytes(), mime, path.name), f"attached {path.name} ({mime}); it goes with your next message"


async def run_chat(service: ChatService, *, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout,
                   user: str | None = None) -> None:
    interactive = stdin.isatty()
    user = user or getpass.getuser()
    key = ConversationKey("console", "local", user)
    surface = ConsoleSurface(stdout, status_out=stdout if interactive else None)
    pending: list[Attachment] = []
    loop = asyncio.get_running_loop()
    if interactive:
        stdout.write("Chat with the bot. /new starts over, /attach PATH adds a file, Ctrl-D quits.\n")
    count = 0
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
            attachment, message = _read_attachment(text[len("/attach"):].strip())
            if attachment is not None:
                pending.append(attachment)
            stdout.write(message + "\n")
            continue
        count += 1
        msg = IncomingMessage(key=key, author=Author(user, user), text=text,
                              message_id=f"console-{count}", attachments=pending)
        pending = []
        if interactive:
            stdout.write("bot> ")
        await service.handle(msg, surface)
        stdout.flush()
