"""Files in a Telegram message: which to download (largest photo size, image or text
documents), within the 20 MB bots may download, and a clear note for the rest."""

from __future__ import annotations

import logging
import mimetypes
from dataclasses import dataclass

from telegram import Bot, Message
from telegram.error import TelegramError

from bot.platform import WHAT_I_READ, Attachment, readable

log = logging.getLogger(__name__)

DOWNLOAD_LIMIT = 20 * 1024 * 1024  # Bot API: bots download at most 20 MB

_UNSUPPORTED = {
    "voice": "a voice message",
    "audio": "an audio file",
    "video": "a video",
    "video_note": "a video message",
    "sticker": "a sticker",
    "animation": "a GIF",
    "contact": "a contact",
    "location": "a location",
    "venue": "a venue",
    "poll": "a poll",
    "dice": "a dice",
    "game": "a game",
    "story": "a story",
    "paid_media": "paid media",
}


@dataclass(frozen=True, slots=True)
class FileRef:
    file_id: str
    size: int | None
    mime: str
    filename: str


def files_of(message: Message) -> tuple[list[FileRef], list[str]]:
    """The files worth downloading, and notes (worded for the user) about the rest."""
    if message.photo:
        largest = message.photo[-1]
        return [FileRef(largest.file_id, largest.file_size, "image/jpeg", "photo.jpg")], []
    doc = message.document
    if doc is not None:
        name = doc.file_name or "document"
        mime = (doc.mime_type or mimetypes.guess_type(name)[0] or "").lower()
        if readable(mime, name) is not None:  # only what the bot can use is downloaded
            if not mime or mime == "application/octet-stream":
                mime = mimetypes.guess_type(name)[0] or "text/plain"
            return [FileRef(doc.file_id, doc.file_size, mime, name)], []
        return [], [
            f"I can't read the file “{name}” ({mime or 'unknown type'}): send an image, or a document ({WHAT_I_READ})."
        ]
    for attr, what in _UNSUPPORTED.items():
        if getattr(message, attr, None):
            return [], [f"I can't handle {what}: send text, an image or a document."]
    return [], []


def too_big(ref: FileRef) -> str:
    return f"“{ref.filename}” is larger than 20 MB, the most Telegram lets bots download; send a smaller file."


async def download(bot: Bot, ref: FileRef) -> Attachment | str:
    """The file's bytes, or a note explaining why not."""
    if ref.size is not None and ref.size > DOWNLOAD_LIMIT:
        return too_big(ref)
    try:
        file = await bot.get_file(ref.file_id)
        if file.file_size is not None and file.file_size > DOWNLOAD_LIMIT:
            return too_big(ref)
        data = bytes(await file.download_as_bytearray())
    except TelegramError as exc:
        if "too big" in str(exc).lower():
            return too_big(ref)
        log.warning("telegram: download of %s failed: %s", ref.filename, exc)
        return f"I couldn't download “{ref.filename}” from Telegram; please send it again."
    return Attachment(data=data, mime=ref.mime, filename=ref.filename)
