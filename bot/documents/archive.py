"""Opening zip-based formats (.docx, .pptx, .xlsx, .epub) without trusting them.

Python's zipfile never inflates a member past the size its directory declares (a lie fails
the CRC check), so the declared sizes bound what a reader can be made to hold: a zip bomb
is refused from its directory before any member is inflated.
"""

from __future__ import annotations

import io
import zipfile

from bot.documents.document import DocumentUnreadable

MAX_MEMBERS = 20_000
MAX_UNCOMPRESSED = 400 * 1024 * 1024  # all members together
MAX_MEMBER = 200 * 1024 * 1024  # one member (a sheet's XML, a chapter)
BOMB_RATIO = 200  # inflates this many times over: a bomb, unless it is small anyway
BOMB_FLOOR = 20 * 1024 * 1024
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # old Office files, and password-protected new ones


def label(filename: str) -> str:
    return f"“{filename}”" if filename else "the file"


def open_zip(data: bytes, filename: str, what: str) -> zipfile.ZipFile:
    """The archive, checked; ``what`` names the format for the user ("a PowerPoint file")."""
    name = label(filename)
    if data.startswith(OLE_MAGIC):
        raise DocumentUnreadable(
            f"{name} is password-protected or in an old Office format; save it "
            f"unprotected in the current format (or as PDF) and send it again"
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DocumentUnreadable(
            f"{name} could not be read as {what} (it may be damaged: {type(exc).__name__})"
        ) from None
    if len(infos) > MAX_MEMBERS:
        raise DocumentUnreadable(f"{name} has too many parts ({len(infos):,}) to be {what} I can read")
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise DocumentUnreadable(f"{name} is encrypted; send an unprotected copy")
        total += info.file_size
        ratio = info.file_size / max(1, info.compress_size)
        if info.file_size > MAX_MEMBER or (ratio > BOMB_RATIO and info.file_size > BOMB_FLOOR):
            raise DocumentUnreadable(
                f"{name} expands to far more than its size ({info.filename}: "
                f"{info.file_size // (1024 * 1024):,} MB); I won't open it"
            )
    if total > MAX_UNCOMPRESSED:
        raise DocumentUnreadable(
            f"{name} expands to {total // (1024 * 1024):,} MB; the limit is {MAX_UNCOMPRESSED // (1024 * 1024)} MB"
        )
    return archive
