"""Text out of documents sent in chat: .txt/.md and other text files, .pdf, .docx.

The result becomes a ``document`` part of the user's message (the prompt builder wraps it
in ``<document name=…>``). A token budget keeps one document from crowding out the rest of
the 200K window: what does not fit is cut at a page/paragraph/line boundary and both the
model and the user are told exactly what was read ("read pages 1–40 of 120"). Files that
cannot be read get one clear sentence, never a traceback.
"""
from __future__ import annotations

import asyncio
import io
import logging
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from bot.config import Settings
from bot.core.tokens import estimate_tokens

log = logging.getLogger(__name__)

MAX_BYTES = 50 * 1024 * 1024  # adapters cap downloads lower; this guards the parsers
MAX_PDF_PAGES = 3_000
MAX_DOCX_XML = 200 * 1024 * 1024  # uncompressed document.xml: refuse zip bombs
DOCUMENT_SHARE = 0.6  # of the window left after the answer, one document may use this much

PDF_MIME = "application/pdf"
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TEXT_EXTENSIONS = {
    ".txt", ".md", ".markdown", ".csv", ".tsv", ".json", ".jsonl", ".yaml", ".yml", ".xml", ".html",
    ".htm", ".log", ".rst", ".ini", ".toml", ".srt", ".vtt", ".tex", ".py", ".js", ".ts", ".sql",
}
TEXT_MIMES = {"application/json", "application/xml", "application/x-yaml", "application/yaml",
              "application/x-subrip", "application/javascript", "application/sql", "application/x-tex"}
OLD_OFFICE_EXT = {".doc": "Word 97–2003 (.doc)", ".ppt": "PowerPoint 97–2003 (.ppt)",
                  ".xls": "Excel 97–2003 (.xls)"}
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # old Office files and password-protected .docx


class DocumentUnreadable(ValueError):
    """``str(exc)`` is a sentence for the user about why the file could not be read."""


@dataclass(slots=True)
class DocumentText:
    filename: str
    kind: str  # "pdf", "docx", "text"
    text: str  # what the model gets (with a statement first when truncated)
    unit: str  # "page", "paragraph", "line"
    read: int  # units read
    total: int  # units in the file
    truncated: bool = False
    tokens: int = 0  # estimated tokens of ``text``
    notes: list[str] = field(default_factory=list)  # for the user (truncation, decoding, empty pages)

    @property
    def statement(self) -> str:
        """What was read, e.g. "read pages 1–40 of 120"."""
        if self.unit == "page":
            return f"read pages 1–{self.read} of {self.total}" if self.truncated else f"read all {self.total} pages"
        plural = f"{self.unit}s"
        if self.truncated:
            share = self.read * 100 // max(1, self.total)
            return f"read the first {self.read:,} of {self.total:,} {plural} (about {share}%)"
        return f"read all {self.total:,} {plural}"


def document_budget(settings: Settings) -> int:
    """Tokens one document may use: a share of the window left after the answer."""
    return max(1_000, int((settings.context_tokens - settings.max_tokens) * DOCUMENT_SHARE))


def _label(filename: str) -> str:
    return f"“{filename}”" if filename else "the file"


# --- decoding text -----------------------------------------------------------------

def decode_text(data: bytes, filename: str = "") -> tuple[str, list[str]]:
    """Decode a text file: BOMs, then UTF-8, then GB18030 (covers GBK/GB2312, the usual
    encodings of Chinese text files). Returns the text and notes for the user."""
    label = _label(filename)
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", "replace"), []
    for bom, codec in ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
                       (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            return data[len(bom):].decode(codec, "replace"), []
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError:
        pass
    if b"\x00" in data[:65536]:
        raise DocumentUnreadable(f"{label} doesn't look like a text file (it contains binary data)")
    try:
        return data.decode("gb18030"), []
    except UnicodeDecodeError:
        pass
    return data.decode("utf-8", "replace"), [f"some characters in {label} could not be decoded and were replaced"]


# --- the budget ----------------------------------------------------------------------

def _cut_to_tokens(text: str, budget: int) -> str:
    """The longest prefix of ``text`` within ``budget`` estimated tokens (bisection: the
    estimate grows with the prefix)."""
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if estimate_tokens(text[:mid]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo]


def _take(chunks: list[str], budget: int, separator_tokens: int = 1) -> tuple[list[str], int]:
    """Whole chunks from the start while they fit. Returns them and the tokens used."""
    taken: list[str] = []
    used = 0
    for chunk in chunks:
        cost = estimate_tokens(chunk) + separator_tokens
        if used + cost > budget:
            break
        taken.append(chunk)
        used += cost
    return taken, used


# --- formats -------------------------------------------------------------------------

def _pdf(data: bytes, filename: str, budget: int) -> DocumentText:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, PdfReadError, PyPdfError

    label = _label(filename)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")  # many "protected" PDFs only restrict printing
            except DependencyError:
                raise DocumentUnreadable(f"{label} is encrypted with a method I can't open; "
                                         "save an unprotected copy and send that") from None
            if not opened:
                raise DocumentUnreadable(f"{label} is password-protected; send an unprotected copy")
        total = len(reader.pages)
    except DocumentUnreadable:
        raise
    except (PyPdfError, PdfReadError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        raise DocumentUnreadable(f"{label} could not be read as a PDF (it may be damaged: "
                                 f"{type(exc).__name__})") from None
    if total == 0:
        raise DocumentUnreadable(f"{label} has no pages")
    notes: list[str] = []
    pages: list[str] = []
    used = 0
    bad = 0
    truncated = False
    for number in range(min(total, MAX_PDF_PAGES)):
        try:
            text = (reader.pages[number].extract_text() or "").strip()
        except Exception as exc:  # noqa: BLE001 - one broken page must not lose the others
            log.info("pdf page %d unreadable: %s", number + 1, type(exc).__name__)
            text, bad = "", bad + 1
        chunk = f"--- page {number + 1} ---\n{text}" if text else f"--- page {number + 1} ---"
        cost = estimate_tokens(chunk) + 1
        if used + cost > budget and pages:
            truncated = True
            break
        if used + cost > budget:  # even the first page is too long: keep what fits of it
            chunk = _cut_to_tokens(chunk, budget)
            truncated = True
            pages.append(chunk)
            break
        pages.append(chunk)
        used += cost
    read = len(pages)
    if read < total:
        truncated = True
    if not any(p.partition("\n")[2].strip() for p in pages):  # text below a page marker
        raise DocumentUnreadable(f"{label} has no text layer (it looks like scanned images); "
                                 "send the pages as photos instead")
    if bad:
        notes.append(f"{bad} page(s) of {label} could not be read and were skipped")
    return DocumentText(filename, "pdf", "\n\n".join(pages), "page", read, total, truncated, notes=notes)


def _docx_blocks(document: Any) -> Iterable[str]:
    from docx.table import Table

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                cells = [c.text.strip().replace("\n", " ") for c in row.cells]
                if any(cells):
                    yield "| " + " | ".join(cells) + " |"
            continue
        text = block.text.strip()
        if not text:
            continue
        style = (block.style.name if block.style is not None else "") or ""
        if style.startswith("Heading") and style[-1:].isdigit():
            yield "#" * min(6, int(style[-1])) + " " + text
        elif style == "Title":
            yield "# " + text
        elif "List" in style:
            yield "- " + text
        else:
            yield text


def _docx(data: bytes, filename: str, budget: int) -> DocumentText:
    import docx

    label = _label(filename)
    if data.startswith(_OLE_MAGIC):
        raise DocumentUnreadable(f"{label} is password-protected or in the old Word format; "
                                 "save it as an unprotected .docx or PDF and send it again")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            info = archive.getinfo("word/document.xml")
            if info.file_size > MAX_DOCX_XML:
                raise DocumentUnreadable(f"{label} is too large to read")
        document = docx.Document(io.BytesIO(data))
        blocks = list(_docx_blocks(document))
    except DocumentUnreadable:
        raise
    except Exception as exc:  # noqa: BLE001 - zip, XML and python-docx errors all mean "damaged"
        raise DocumentUnreadable(f"{label} could not be read as a Word document (it may be damaged: "
                                 f"{type(exc).__name__})") from None
    if not blocks:
        raise DocumentUnreadable(f"{label} contains no text")
    return _chunks_within(blocks, filename, "docx", "paragraph", budget, "\n\n")


def _chunks_within(chunks: list[str], filename: str, kind: str, unit: str, budget: int,
                   separator: str, notes: list[str] | None = None) -> DocumentText:
    taken, _ = _take(chunks, budget)
    truncated = len(taken) < len(chunks)
    if not taken:  # one enormous first chunk: keep what fits of it
        taken = [_cut_to_tokens(chunks[0], budget)]
    return DocumentText(filename, kind, separator.join(taken), unit, len(taken), len(chunks), truncated,
                        notes=list(notes or []))


def _text(data: bytes, filename: str, budget: int) -> DocumentText:
    text, notes = decode_text(data, filename)
    if not text.strip():
        raise DocumentUnreadable(f"{_label(filename)} is empty")
    lines = text.replace("\r\n", "\n").split("\n")
    return _chunks_within(lines, filename, "text", "line", budget, "\n", notes)


# --- entry points --------------------------------------------------------------------

def kind_of(data: bytes, mime: str, filename: str) -> str | None:
    """"pdf", "docx", "text", or None for types we don't read."""
    ext = PurePath(filename.lower()).suffix
    mime = (mime or "").split(";")[0].strip().lower()
    if ext == ".pdf" or mime == PDF_MIME or data.startswith(b"%PDF-"):
        return "pdf"
    if ext == ".docx" or mime == DOCX_MIME:
        return "docx"
    if ext in OLD_OFFICE_EXT:
        return None
    if mime.startswith("text/") or mime in TEXT_MIMES or ext in TEXT_EXTENSIONS:
        return "text"
    return None


def extract_text(data: bytes, mime: str, filename: str, budget_tokens: int) -> DocumentText:
    """Read a document within ``budget_tokens``; raises ``DocumentUnreadable`` with a
    sentence for the user. CPU-bound: call it through ``read_document`` from async code."""
    label = _label(filename)
    if not data:
        raise DocumentUnreadable(f"{label} is empty")
    if len(data) > MAX_BYTES:
        raise DocumentUnreadable(f"{label} is too large ({len(data) // (1024 * 1024)} MB); "
                                 f"the limit is {MAX_BYTES // (1024 * 1024)} MB")
    kind = kind_of(data, mime, filename)
    ext = PurePath(filename.lower()).suffix
    if kind is None:
        if ext in OLD_OFFICE_EXT:
            raise DocumentUnreadable(f"{label} is in the old {OLD_OFFICE_EXT[ext]} format; save it as "
                                     ".docx or PDF and send it again")
        what = mime or (ext or "unknown type")
        raise DocumentUnreadable(f"I can't read files like {label} ({what}); I read .txt, .md, .pdf, "
                                 ".docx and other text files")
    reader = {"pdf": _pdf, "docx": _docx, "text": _text}[kind]
    doc = reader(data, filename, budget_tokens)
    if doc.truncated:
        doc.notes.insert(0, f"{label} is long: I {doc.statement}; the rest did not fit")
    if doc.notes:  # the model is told what it did not get, like the user
        doc.text = "[" + "; ".join(doc.notes) + "]\n\n" + doc.text
    doc.tokens = estimate_tokens(doc.text)
    return doc


async def read_document(data: bytes, mime: str, filename: str, budget_tokens: int) -> DocumentText:
    """``extract_text`` in a worker thread, so parsing a big PDF never blocks the event loop."""
    return await asyncio.to_thread(extract_text, data, mime, filename, budget_tokens)


async def to_parts(att: Any, settings: Settings, budget_tokens: int | None = None) -> tuple[list[Any], list[str]]:
    """Parts to store for an ``Attachment`` and notices for the user (what the core calls).

    Readable: one ``document`` part (text, data = filename, mime, kind, unit, read, total,
    truncated, tokens); what was left out is stated at the top of its text and in the
    notices. Unreadable: a ``note`` part and one notice sentence.
    """
    from bot.store.repo import NewPart

    budget = budget_tokens if budget_tokens is not None else document_budget(settings)
    name = att.filename or "document"
    try:
        doc = await read_document(att.data, att.mime, att.filename, budget)
    except DocumentUnreadable as exc:
        return [NewPart("note", text=f"document {name} not read: {exc}")], [_sentence(str(exc))]
    data = {"filename": name, "mime": att.mime, "kind": doc.kind, "unit": doc.unit, "read": doc.read,
            "total": doc.total, "truncated": doc.truncated, "tokens": doc.tokens}
    return [NewPart("document", text=doc.text, data=data)], [_sentence(n) for n in doc.notes]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "。")) else ".")
