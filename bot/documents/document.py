"""What a document read from chat is: its sections, each at a place a user can name.

Every reader (pdf, docx, pptx, sheets, epub, text) produces one ``Document``. Its sections
are the boundaries a splitter may cut at and the places an answer may cite: a page, a
slide (with its speaker notes), a sheet (with the rows shown), a chapter or a heading's
section of a Word file, or a run of lines of a text file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bot.platform.files import DocumentKind as DocumentKind  # the one list of what is read

LocationKind = Literal["page", "slide", "sheet", "chapter", "section", "paragraphs", "lines"]
# Where a section's text came from: the file's text layer, the model's vision (a scanned
# page transcribed), or nowhere yet (a scanned page not transcribed: ``Document.scanned``).
TextSource = Literal["text", "vision", "none"]
# What the budget cut of ``to_parts`` counts in; "row" is never cut inside a sheet (sheets
# are summarised by rows when read), the cut for sheets is by whole sheet.
Unit = Literal["page", "slide", "sheet", "chapter", "paragraph", "line"]


class DocumentUnreadable(ValueError):
    """``str(exc)`` is a sentence for the user about why the file could not be read."""


@dataclass(frozen=True, slots=True)
class Location:
    """A place in a document, as the user would look it up."""

    kind: LocationKind
    number: int  # 1-based: page, slide, sheet (in workbook order), chapter, section; first line/paragraph
    title: str = ""  # chapter or section heading, sheet name, slide title
    last: int = 0  # "lines"/"paragraphs": the last one; "sheet": the last data row shown (0: none)
    of: int = 0  # "sheet": data rows in the sheet (0: unknown / not a sheet)

    @property
    def label(self) -> str:
        """Short and unambiguous: "page 12", "slide 3 “Pricing”", "sheet “销售” rows 1–200 of
        12,000", "chapter 4 “市场概况”", "section 2 “Pricing”", "paragraphs 41–80", "lines 1–120"."""
        title = f" “{self.title}”" if self.title else ""
        if self.kind in ("lines", "paragraphs"):
            if self.last > self.number:
                return f"{self.kind} {self.number:,}–{self.last:,}"
            return f"{self.kind[:-1]} {self.number:,}"
        if self.kind == "sheet":
            if self.of and self.last < self.of:
                return f"sheet{title} rows 1–{self.last:,} of {self.of:,}"
            return f"sheet{title}" if title else f"sheet {self.number}"
        return f"{self.kind} {self.number}{title}"


@dataclass(slots=True)
class Section:
    location: Location
    text: str  # normalised; for a slide, its body (notes apart)
    source: TextSource = "text"
    notes: str = ""  # a slide's speaker notes
    blocks: int = 1  # paragraphs / lines in ``text`` (the unit the budget cuts docx / text files by)

    @property
    def full_text(self) -> str:
        if self.notes:
            return f"{self.text}\n[speaker notes] {self.notes}" if self.text else f"[speaker notes] {self.notes}"
        return self.text

    @property
    def empty(self) -> bool:
        return not self.text.strip() and not self.notes.strip()


@dataclass(slots=True)
class Document:
    filename: str
    kind: DocumentKind
    unit: Unit
    sections: list[Section]
    total: int  # units in the file (pages, slides, sheets, chapters, paragraphs, lines)
    notes: list[str] = field(default_factory=list)  # for the user: what was skipped and why
    scanned: list[int] = field(default_factory=list)  # PDF pages with no text layer but with content
    # A PDF's bookmarks at the level that names its chapters: (first page, title), in page order.
    # Where a part of a long document had better end (bot.longdocs.plan) and what it covers.
    outline: list[tuple[int, str]] = field(default_factory=list)

    @property
    def pages(self) -> int:
        """Pages (PDF), slides, sheets or chapters: the count a user would quote."""
        return self.total

    @property
    def text_chars(self) -> int:
        return sum(len(s.full_text) for s in self.sections)

    def section(self, kind: LocationKind, number: int) -> Section | None:
        return next((s for s in self.sections if s.location.kind == kind and s.location.number == number), None)

    def fill(self, texts: dict[int, str], source: TextSource = "vision") -> None:
        """Put transcribed text into pages that had none (see ``vision.transcribe_pages``)."""
        for section in self.sections:
            if section.location.kind == "page" and section.location.number in texts:
                section.text = texts[section.location.number]
                section.source = source
        self.scanned = [p for p in self.scanned if p not in texts]


def ranges(numbers: list[int]) -> str:
    """[1, 2, 3, 5, 7, 8] → "1–3, 5, 7–8"."""
    out: list[str] = []
    run: list[int] = []
    for number in sorted(set(numbers)):
        if run and number == run[-1] + 1:
            run.append(number)
            continue
        if run:
            out.append(f"{run[0]}–{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [number]
    if run:
        out.append(f"{run[0]}–{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(out)
