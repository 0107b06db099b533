"""Documents sent in chat, read into one typed structure (``Document`` of ``Section``s, each
at a location a user can name) and from it into prompt parts.

Formats: PDF (text layer through PDFium; pages without one found, rendered and read by the
model's vision: ``vision.transcribe_pages``), Word .docx, PowerPoint .pptx, Excel .xlsx and
.csv/.tsv, EPUB, and text files. Extracted text is normalised (``textnorm``). Files that
cannot be read get one clear sentence, never a traceback.

- ``read(data, mime, filename) -> Document``: everything, for a splitter that works in parts;
- ``extract_text`` / ``read_document`` / ``to_parts``: one part within a share of the window,
  cut at a unit boundary with a statement of what was read (what the core calls today).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import PurePath
from typing import Any

from bot.config import Settings
from bot.core.tokens import estimate_tokens
from bot.documents.archive import label
from bot.documents.budget import DocumentText, within
from bot.documents.document import Document, DocumentKind, DocumentUnreadable, Location, Section, ranges
from bot.documents.text import decode_text
from bot.platform.files import (
    DOCUMENT_EXTENSIONS,
    DOCUMENT_MIMES,
    OLD_OFFICE_EXTENSIONS,
    TEXT_EXTENSIONS,
    TEXT_MIMES,
    WHAT_I_READ,
)

__all__ = [
    "Document",
    "DocumentText",
    "DocumentUnreadable",
    "Location",
    "Section",
    "decode_text",
    "document_budget",
    "document_parts",
    "extract_text",
    "kind_of",
    "read",
    "read_document",
    "sentence",
    "to_parts",
    "unreadable",
]

log = logging.getLogger(__name__)

MAX_BYTES = 50 * 1024 * 1024  # adapters cap downloads lower; this guards the parsers
DOCUMENT_SHARE = 0.6  # of the window left after the answer, one document may use this much

# Which files are read (shared with the adapters, which download only these).
PDF_MIME = "application/pdf"
MIMES = DOCUMENT_MIMES
EXTENSIONS = DOCUMENT_EXTENSIONS
OLD_OFFICE_EXT = OLD_OFFICE_EXTENSIONS


def document_budget(settings: Settings) -> int:
    """Tokens one document may use: a share of the window left after the answer."""
    return max(1_000, int((settings.context_tokens - settings.max_tokens) * DOCUMENT_SHARE))


def kind_of(data: bytes, mime: str, filename: str) -> DocumentKind | None:
    """The reader for a file, by extension, then MIME type, then content; None for types we don't read."""
    ext = PurePath(filename.lower()).suffix
    mime = (mime or "").split(";")[0].strip().lower()
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    if mime in MIMES:
        return MIMES[mime]
    if data.startswith(b"%PDF-"):
        return "pdf"
    if ext in OLD_OFFICE_EXT:
        return None
    if mime.startswith("text/") or mime in TEXT_MIMES or ext in TEXT_EXTENSIONS:
        return "text"
    return None


def read(data: bytes, mime: str, filename: str, *, stop_tokens: int | None = None) -> Document:
    """The whole document, section by section; raises ``DocumentUnreadable`` with a sentence
    for the user. CPU-bound: run it in a worker thread from async code. ``stop_tokens``: a
    PDF's pages are read only until their text passes that many tokens (for a budget cut)."""
    name = label(filename)
    if not data:
        raise DocumentUnreadable(f"{name} is empty")
    if len(data) > MAX_BYTES:
        raise DocumentUnreadable(
            f"{name} is too large ({len(data) // (1024 * 1024)} MB); the limit is {MAX_BYTES // (1024 * 1024)} MB"
        )
    kind = kind_of(data, mime, filename)
    ext = PurePath(filename.lower()).suffix
    if kind is None:
        if ext in OLD_OFFICE_EXT:
            raise DocumentUnreadable(
                f"{name} is in the old {OLD_OFFICE_EXT[ext]} format; save it in the "
                "current format (or as PDF) and send it again"
            )
        what = mime or (ext or "unknown type")
        raise DocumentUnreadable(f"I can't read files like {name} ({what}); I read {WHAT_I_READ}")
    if kind == "pdf":
        from bot.documents.pdf import read_pdf

        return read_pdf(data, filename, stop_tokens)
    if kind == "docx":
        from bot.documents.docx import read_docx

        return read_docx(data, filename)
    if kind == "pptx":
        from bot.documents.pptx import read_pptx

        return read_pptx(data, filename)
    if kind == "xlsx":
        from bot.documents.sheets import read_xlsx

        return read_xlsx(data, filename)
    if kind == "csv":
        from bot.documents.sheets import read_csv

        return read_csv(data, filename)
    if kind == "epub":
        from bot.documents.epub import read_epub

        return read_epub(data, filename)
    from bot.documents.text import read_text

    return read_text(data, filename)


def _pages(numbers: list[int]) -> str:
    return f"page {numbers[0]}" if len(numbers) == 1 else f"pages {ranges(numbers)}"


def _scanned_notes(doc: Document, read_pages: int, imaged: list[int], vision: bool) -> list[str]:
    name = label(doc.filename)
    scanned = [p for p in doc.scanned if p <= read_pages]
    if not scanned:
        return []
    pages = _pages(scanned)
    if not vision:
        return [
            f"{pages} of {name} are scanned images without a text layer, and image input is turned "
            "off, so I could not read them"
        ]
    rest = [p for p in scanned if p not in imaged]
    if not imaged:
        return [f"{pages} of {name} have no text layer (scanned) and were not read"]
    if not rest:
        return [f"{pages} of {name} have no text layer (scanned); I'm reading them as images"]
    shown = f"{_pages(imaged)} as {'an image' if len(imaged) == 1 else 'images'}"
    missed = f"{_pages(rest)} {'was' if len(rest) == 1 else 'were'} not read"
    return [f"{pages} of {name} have no text layer (scanned); I'm reading {shown}, {missed}"]


def extract_text(
    data: bytes, mime: str, filename: str, budget_tokens: int, *, page_images: int = 0, vision: bool = True
) -> DocumentText:
    """Read a document within ``budget_tokens``; raises ``DocumentUnreadable`` with a
    sentence for the user. Up to ``page_images`` scanned PDF pages (among those read) are
    rendered into ``DocumentText.images``. CPU-bound: call it through ``read_document``."""
    doc = read(data, mime, filename, stop_tokens=budget_tokens)
    first = within(doc, budget_tokens)
    imaged: list[int] = []
    if doc.scanned and vision and page_images > 0:
        from bot.documents.pdf import render_pages

        wanted = [p for p in doc.scanned if p <= first.read][:page_images]
        images = list(render_pages(data, wanted, filename))
        imaged = [image.page for image in images]
        first = within(doc, budget_tokens, {page: i for i, page in enumerate(imaged, 1)})
        first.images = images
    text = first
    text.notes = _scanned_notes(doc, text.read, imaged, vision) + text.notes
    if not text.images and all(s.empty for s in doc.sections):
        if doc.scanned:
            raise DocumentUnreadable(
                f"{label(filename)} has no text layer (its pages are scanned images) "
                "and image input is turned off, so I can't read it"
            )
        raise DocumentUnreadable(f"{label(filename)} has no text I can read")
    if text.truncated:
        text.notes.insert(0, f"{label(filename)} is long: I {text.statement}; the rest did not fit")
    if text.notes:  # the model is told what it did not get, like the user
        text.text = "[" + "; ".join(text.notes) + "]\n\n" + text.text
    text.tokens = estimate_tokens(text.text)
    return text


async def read_document(
    data: bytes, mime: str, filename: str, budget_tokens: int, *, page_images: int = 0, vision: bool = True
) -> DocumentText:
    """``extract_text`` in a worker thread, so parsing a big file never blocks the event loop."""
    return await asyncio.to_thread(
        extract_text, data, mime, filename, budget_tokens, page_images=page_images, vision=vision
    )


async def to_parts(att: Any, settings: Settings, budget_tokens: int | None = None) -> tuple[list[Any], list[str]]:
    """Parts to store for an ``Attachment`` and notices for the user (what the core calls).

    Readable: one ``document`` part (text, data = filename, mime, kind, unit, read, total,
    truncated, tokens, scanned pages), then one ``image`` part per scanned page shown to the
    model (at most ``max_images``, when vision is on); what was left out is stated at the
    top of the text and in the notices. Unreadable: a ``note`` part and one notice sentence.
    """
    budget = budget_tokens if budget_tokens is not None else document_budget(settings)
    vision = bool(getattr(settings, "vision", True))
    try:
        doc = await read_document(
            att.data, att.mime, att.filename, budget, page_images=int(getattr(settings, "max_images", 0)), vision=vision
        )
    except DocumentUnreadable as exc:
        return unreadable(att, exc)
    return document_parts(att, doc), [sentence(n) for n in doc.notes]


def unreadable(att: Any, exc: DocumentUnreadable) -> tuple[list[Any], list[str]]:
    """A ``note`` part saying why a file was not read, and the sentence for the user."""
    from bot.store.repo import NewPart

    name = att.filename or "document"
    return [NewPart("note", text=f"document {name} not read: {exc}")], [sentence(str(exc))]


def document_parts(att: Any, doc: DocumentText, **data: Any) -> list[Any]:
    """The ``document`` part of ``doc`` (``data`` added to its data), then its page images."""
    from bot.store.repo import NewPart

    name = att.filename or "document"
    scanned = doc.document.scanned if doc.document is not None else []
    described = {
        "filename": name,
        "mime": att.mime,
        "kind": doc.kind,
        "unit": doc.unit,
        "read": doc.read,
        "total": doc.total,
        "truncated": doc.truncated,
        "tokens": doc.tokens,
        "scanned": scanned,
        "imaged": [image.page for image in doc.images],
        **data,
    }
    parts = [NewPart("document", text=doc.text, data=described)]
    for image in doc.images:
        parts.append(
            NewPart(
                "image",
                blob=image.data,
                mime=image.mime,
                data={
                    "filename": f"{name} (page {image.page})",
                    "page": image.page,
                    "document": name,
                    "width": image.width,
                    "height": image.height,
                },
            )
        )
    return parts


def sentence(text: str) -> str:
    """A note as a sentence for the user: capitalised, with a full stop."""
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "。")) else ".")
