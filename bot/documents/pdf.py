"""PDF: each page's text through PDFium (pypdfium2), and pages without a text layer found
and rendered to images for the model's vision.

PDFium rather than pypdf: on Chromium's CJK PDFs it follows the ``/ActualText`` the printer
writes, so "一只好杯子" comes out where pypdf gives Kangxi radicals, and it is over 10× faster
(figures in tests/test_documents_corpus.py and bench/documents.py). PDFium is not
thread-safe, not even across documents, so every call into it holds ``PDFIUM``.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from bot.documents.archive import label
from bot.documents.document import Document, DocumentUnreadable, Location, Section, TextSource
from bot.documents.textnorm import normalise

log = logging.getLogger(__name__)

PDFIUM = threading.Lock()
MAX_PAGES = 3_000
# A page with less text than this whose images cover most of it is a scan with a stamp or a
# page number on it: it is rendered and read by the model like a page with no text at all.
SCAN_TEXT_CHARS = 32
SCAN_IMAGE_SHARE = 0.5
# Rendering: the long side at the size the bot sends images (bot.images.MAX_SIDE), i.e. an
# A4 page at about 175 dpi, where 9 pt CJK is legible; never above 220 dpi for small pages.
RENDER_MAX_SCALE = 220 / 72
JPEG_QUALITY = 85

_PASSWORD = 4  # FPDF_ERR_PASSWORD
_SECURITY = 6  # FPDF_ERR_SECURITY: an encryption handler PDFium lacks


@dataclass(slots=True)
class PageImage:
    page: int  # 1-based
    data: bytes
    mime: str
    width: int
    height: int


def _open(data: bytes, filename: str) -> object:
    import pypdfium2 as pdfium

    name = label(filename)
    try:
        return pdfium.PdfDocument(data)  # an empty user password (restrictions only) opens as is
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code == _PASSWORD:
            raise DocumentUnreadable(f"{name} is password-protected; send an unprotected copy") from None
        if code == _SECURITY:
            raise DocumentUnreadable(
                f"{name} is encrypted with a method I can't open; save an unprotected copy and send that"
            ) from None
        raise DocumentUnreadable(f"{name} could not be read as a PDF (it may be damaged)") from None


def _image_share(page: object, width: float, height: float) -> float:
    """The share of the page that image objects cover (overlaps counted twice, capped at 1)."""
    import pypdfium2.raw as raw

    area = 0.0
    for obj in page.get_objects(filter=[raw.FPDF_PAGEOBJ_IMAGE], max_depth=4):  # type: ignore[attr-defined]
        left, bottom, right, top = obj.get_pos()
        area += max(0.0, right - left) * max(0.0, top - bottom)
    return min(1.0, area / max(1.0, width * height))


def _page(doc: object, index: int) -> tuple[str, bool]:
    """The page's text and whether it needs the model's eyes (no usable text layer, but
    something drawn on it). Call holding ``PDFIUM``."""
    page = doc[index]  # type: ignore[index]
    try:
        textpage = page.get_textpage()
        try:
            text = textpage.get_text_range()
        finally:
            textpage.close()
        visible = sum(1 for c in text if not c.isspace())
        if visible >= SCAN_TEXT_CHARS:
            return text, False
        width, height = page.get_size()
        if visible == 0:
            drawn = next(iter(page.get_objects(max_depth=1)), None) is not None
            return text, drawn
        return text, _image_share(page, width, height) >= SCAN_IMAGE_SHARE
    finally:
        page.close()


def read_pdf(data: bytes, filename: str, stop_tokens: int | None = None) -> Document:
    """Every page (up to ``MAX_PAGES``); with ``stop_tokens``, pages only until their text
    passes that many estimated tokens (a caller cutting at a budget needs no more: a Chromium
    PDF costs ~15 ms a page in PDFium, 15 s for 1,000 pages). ``Document.total`` stays the
    file's page count, so what was not read is stated."""
    import pypdfium2 as pdfium

    from bot.core.tokens import estimate_tokens

    name = label(filename)
    with PDFIUM:
        doc = _open(data, filename)
        total = len(doc)  # type: ignore[arg-type]
        outline = _outline(doc, total)
    try:
        if total == 0:
            raise DocumentUnreadable(f"{name} has no pages")
        sections: list[Section] = []
        scanned: list[int] = []
        bad = 0
        used = 0
        for index in range(min(total, MAX_PAGES)):
            if stop_tokens is not None and used > stop_tokens:
                break
            try:
                with PDFIUM:
                    raw_text, needs_eyes = _page(doc, index)
            except pdfium.PdfiumError as exc:  # one broken page must not lose the others
                log.info("pdf page %d unreadable: %s", index + 1, exc)
                raw_text, needs_eyes, bad = "", False, bad + 1
            text = normalise(raw_text).strip()
            if needs_eyes:
                scanned.append(index + 1)
            source: TextSource = "none" if needs_eyes and not text else "text"
            sections.append(Section(Location("page", index + 1), text, source))
            used += estimate_tokens(text) if stop_tokens is not None else 0
    finally:
        with PDFIUM:
            doc.close()  # type: ignore[attr-defined]
    notes: list[str] = []
    if total > MAX_PAGES and len(sections) == MAX_PAGES:
        notes.append(f"{name} has {total:,} pages; I read the first {MAX_PAGES:,}")
    if bad:
        notes.append(f"{bad} page(s) of {name} could not be read and were skipped")
    if not scanned and not any(s.text for s in sections):
        raise DocumentUnreadable(f"{name} has no text layer and its pages look blank")
    return Document(filename, "pdf", "page", sections, total, notes, scanned, outline)


def _outline(doc: object, total: int) -> list[tuple[int, str]]:
    """(first page, title) of the bookmarks at the shallowest level with two or more of them
    (a single top bookmark is usually the title), in page order. Call holding ``PDFIUM``."""
    levels: dict[int, list[tuple[int, str]]] = {}
    try:
        for mark in doc.get_toc(max_depth=3):  # type: ignore[attr-defined]
            dest = mark.get_dest()
            index = dest.get_index() if dest is not None else None
            if index is not None and 0 <= index < total:
                levels.setdefault(mark.level, []).append((index + 1, normalise(mark.get_title() or "").strip()))
    except Exception as exc:  # noqa: BLE001 - a broken outline must not lose the text
        log.info("pdf outline unreadable: %s", exc)
        return []
    for level in sorted(levels):
        marks = sorted(set(levels[level]))
        if len(marks) >= 2:
            return marks
    return []


def _render(doc: object, index: int, max_side: int) -> PageImage:
    """One page as a JPEG no larger than ``max_side`` on its long side. Call holding ``PDFIUM``."""
    page = doc[index]  # type: ignore[index]
    try:
        width, height = page.get_size()
        scale = min(RENDER_MAX_SCALE, max_side / max(1.0, width, height))
        bitmap = page.render(scale=scale, may_draw_forms=True)
        try:
            image = bitmap.to_pil()
        finally:
            bitmap.close()
    finally:
        page.close()
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return PageImage(index + 1, out.getvalue(), "image/jpeg", image.width, image.height)


def render_pages(
    data: bytes, pages: Iterable[int], filename: str = "", *, max_side: int | None = None
) -> Iterator[PageImage]:
    """Render the given 1-based pages, one at a time (a caller taking a few at a time holds
    only those), each checked and if need be scaled by ``bot.images.prepare_image`` so it is
    within the gateway's limits (JPEG, ≤ 10 MB)."""
    from bot.images import MAX_SIDE, ImageRejected, prepare_image

    side = max_side or MAX_SIDE
    with PDFIUM:
        doc = _open(data, filename)
        total = len(doc)  # type: ignore[arg-type]
    try:
        for number in pages:
            if not 1 <= number <= total:
                continue
            with PDFIUM:
                image = _render(doc, number - 1, side)
            try:
                ready = prepare_image(image.data, f"page {number}")
            except ImageRejected as exc:
                log.info("page %d rendered unusably: %s", number, exc)
                continue
            yield PageImage(number, ready.data, ready.mime, ready.width, ready.height)
    finally:
        with PDFIUM:
            doc.close()  # type: ignore[attr-defined]
