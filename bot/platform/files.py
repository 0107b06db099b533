"""Which files the bot can use: adapters download only these, and answer anything else with
one sentence (``WHAT_I_READ``) instead of fetching it. One list for every platform, kept
beside the readers that use it (``bot.documents``) and the images the model sees.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Literal

FileKind = Literal["image", "document"]
DocumentKind = Literal["pdf", "docx", "pptx", "xlsx", "csv", "epub", "text"]

IMAGE_MIMES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp"})

OOXML = "application/vnd.openxmlformats-officedocument."
DOCUMENT_MIMES: dict[str, DocumentKind] = {
    "application/pdf": "pdf",
    OOXML + "wordprocessingml.document": "docx",
    OOXML + "presentationml.presentation": "pptx",
    OOXML + "spreadsheetml.sheet": "xlsx",
    "application/epub+zip": "epub",
    "text/csv": "csv",
    "text/tab-separated-values": "csv",
}
DOCUMENT_EXTENSIONS: dict[str, DocumentKind] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".epub": "epub",
    ".csv": "csv",
    ".tsv": "csv",
}
TEXT_EXTENSIONS = frozenset(
    {
        ".txt",
        ".md",
        ".markdown",
        ".json",
        ".jsonl",
        ".yaml",
        ".yml",
        ".xml",
        ".html",
        ".htm",
        ".log",
        ".rst",
        ".ini",
        ".toml",
        ".srt",
        ".vtt",
        ".tex",
        ".py",
        ".js",
        ".ts",
        ".sql",
    }
)
TEXT_MIMES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/x-yaml",
        "application/yaml",
        "application/x-subrip",
        "application/javascript",
        "application/sql",
        "application/x-tex",
    }
)
OLD_OFFICE_EXTENSIONS = {
    ".doc": "Word 97–2003 (.doc)",
    ".ppt": "PowerPoint 97–2003 (.ppt)",
    ".xls": "Excel 97–2003 (.xls)",
}
WHAT_I_READ = ".pdf, .docx, .pptx, .xlsx, .csv, .epub, .txt, .md and other text files"


def suffix_of(filename: str) -> str:
    return PurePath(filename.lower()).suffix


def readable(mime: str, filename: str) -> FileKind | None:
    """Whether a file is worth downloading: an image the model can see, a document the bot
    reads, or None (answer it with a sentence, do not fetch it). ``mime`` may be empty or
    generic (``application/octet-stream``): the name decides then."""
    mime = (mime or "").split(";")[0].strip().lower()
    ext = suffix_of(filename)
    if mime in IMAGE_MIMES or (ext in IMAGE_EXTENSIONS and not mime.startswith(("text/", "application/"))):
        return "image"
    if ext in OLD_OFFICE_EXTENSIONS:
        return None
    if (
        ext in DOCUMENT_EXTENSIONS
        or mime in DOCUMENT_MIMES
        or ext in TEXT_EXTENSIONS
        or mime in TEXT_MIMES
        or mime.startswith("text/")
    ):
        return "document"
    return None
