"""Plain text files (.txt, .md, code, subtitles …): decoded (BOMs, UTF-8, then GB18030,
which covers GBK/GB2312, the usual encodings of Chinese text files) and cut into runs of
lines, or at Markdown headings, so a splitter can cite "lines 120–240"."""

from __future__ import annotations

import re
from pathlib import PurePath

from bot.documents.archive import label
from bot.documents.document import Document, DocumentUnreadable, Location, Section
from bot.documents.textnorm import normalise

SECTION_CHARS = 6_000
_HEADING = re.compile(r"^#{1,2} \S")
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


def encoding_of(data: bytes) -> tuple[str, int]:
    """The codec and the BOM's length: a BOM, else UTF-8 if it decodes, else GB18030 if it
    decodes, else UTF-8 with replacement ("utf-8?"). Raises for binary data."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8", 3
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return codec, len(bom)
    for codec in ("utf-8", "gb18030"):
        if codec == "gb18030" and b"\x00" in data[:65536]:
            break
        try:
            data.decode(codec)
        except UnicodeDecodeError:
            continue
        return codec, 0
    if b"\x00" in data[:65536]:
        return "binary", 0
    return "utf-8?", 0


def decode_text(data: bytes, filename: str = "") -> tuple[str, list[str]]:
    """Decode a text file. Returns the text and notes for the user."""
    codec, skip = encoding_of(data)
    if codec == "binary":
        raise DocumentUnreadable(f"{label(filename)} doesn't look like a text file (it contains binary data)")
    if codec == "utf-8?":
        return data.decode("utf-8", "replace"), [
            f"some characters in {label(filename)} could not be decoded and were replaced"
        ]
    return data[skip:].decode(codec, "replace"), []


def line_sections(lines: list[str], markdown: bool) -> list[Section]:
    sections: list[Section] = []
    start, size, title = 0, 0, ""

    def close(end: int) -> None:
        if end > start:
            chunk = lines[start:end]
            where = Location("section", len(sections) + 1, title) if title else Location("lines", start + 1, last=end)
            sections.append(Section(where, "\n".join(chunk), blocks=len(chunk)))

    for index, line in enumerate(lines):
        heading = markdown and _HEADING.match(line) is not None
        if (heading and index > start) or (not heading and size > SECTION_CHARS):
            close(index)
            start, size = index, 0
            title = line.lstrip("# ").strip() if heading else ""
        elif heading:
            title = line.lstrip("# ").strip()
        size += len(line) + 1
    close(len(lines))
    return sections


def read_text(data: bytes, filename: str) -> Document:
    text, notes = decode_text(data, filename)
    if not text.strip():
        raise DocumentUnreadable(f"{label(filename)} is empty")
    lines = normalise(text).split("\n")
    markdown = PurePath(filename.lower()).suffix in (".md", ".markdown")
    return Document(filename, "text", "line", line_sections(lines, markdown), len(lines), notes)
