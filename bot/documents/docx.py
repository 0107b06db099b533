"""Word (.docx): paragraphs, headings and tables in document order, in sections that start
at each level-1 or level-2 heading (the places a reader would cite); a file without such
headings is cut into runs of paragraphs instead."""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from typing import Any

from bot.documents.archive import label, open_zip
from bot.documents.document import Document, DocumentUnreadable, Location, Section
from bot.documents.textnorm import normalise

SECTION_CHARS = 6_000  # a run of paragraphs without headings is cut about this long
_BLANK_LINES = re.compile(r"\n\s*\n+")


def _blocks(document: Any) -> Iterator[tuple[int, str]]:
    """(heading level or 0, Markdown-ish text) per paragraph or table row, in order."""
    from docx.table import Table

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                cells = [c.text.strip().replace("\n", " ") for c in row.cells]
                if any(cells):
                    yield 0, "| " + " | ".join(cells) + " |"
            continue
        # A paragraph never holds a blank line: blocks are joined by one ("\n\n").
        text = _BLANK_LINES.sub("\n", block.text.strip())
        if not text:
            continue
        style = (block.style.name if block.style is not None else "") or ""
        if style.startswith("Heading") and style[-1:].isdigit():
            level = min(6, int(style[-1]))
            yield level, "#" * level + " " + text
        elif style == "Title":
            yield 1, "# " + text
        elif "List" in style:
            yield 0, "- " + text
        else:
            yield 0, text


def _sections(blocks: Iterable[tuple[int, str]]) -> list[Section]:
    sections: list[Section] = []
    current: list[str] = []
    title = ""
    first = 1  # paragraph number of the current section's first block
    count = 0

    def close() -> None:
        if current:
            number = len(sections) + 1
            where = (
                Location("section", number, title)
                if title
                else Location("paragraphs", first, last=first + len(current) - 1)
            )
            sections.append(Section(where, normalise("\n\n".join(current)), blocks=len(current)))

    size = 0
    for level, text in blocks:
        count += 1
        if level in (1, 2) or (not title and size > SECTION_CHARS):
            close()
            current, size, first = [], 0, count
            title = normalise(text.lstrip("# ").strip()) if level in (1, 2) else ""
        current.append(text)
        size += len(text)
    close()
    return sections


def read_docx(data: bytes, filename: str) -> Document:
    import docx

    name = label(filename)
    with open_zip(data, filename, "a Word document") as archive:
        if "word/document.xml" not in archive.namelist():
            raise DocumentUnreadable(f"{name} could not be read as a Word document (it has no document part)")
    try:
        sections = _sections(_blocks(docx.Document(io.BytesIO(data))))
    except Exception as exc:  # noqa: BLE001 - zip, XML and python-docx errors all mean "damaged"
        raise DocumentUnreadable(
            f"{name} could not be read as a Word document (it may be damaged: {type(exc).__name__})"
        ) from None
    if not sections:
        raise DocumentUnreadable(f"{name} contains no text")
    return Document(filename, "docx", "paragraph", sections, sum(s.blocks for s in sections))
