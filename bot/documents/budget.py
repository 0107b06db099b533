"""A ``Document`` as one prompt part within a token budget.

What does not fit is cut at a unit boundary (page, slide, sheet, chapter; paragraph of a
Word file; line of a text file) and both the model and the user are told exactly what was
read ("read pages 1–40 of 120"). Sections are marked with their location ("--- page 12 ---",
"--- slide 3 “Pricing” ---") so the model can cite them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.core.tokens import estimate_tokens
from bot.documents.document import Document, Section

ORDERED = {"page", "slide", "chapter"}
_SEPARATOR = {"paragraph": "\n\n", "line": "\n"}


@dataclass(slots=True)
class DocumentText:
    filename: str
    kind: str  # "pdf", "docx", "pptx", "xlsx", "csv", "epub", "text"
    text: str  # what the model gets (with a statement first when truncated)
    unit: str  # "page", "slide", "sheet", "chapter", "paragraph", "line"
    read: int  # units read
    total: int  # units in the file
    truncated: bool = False
    tokens: int = 0  # estimated tokens of ``text``
    notes: list[str] = field(default_factory=list)  # for the user (truncation, decoding, scanned pages)
    document: Document | None = None
    images: list = field(default_factory=list)  # pdf.PageImage of scanned pages, in page order

    @property
    def statement(self) -> str:
        """What was read, e.g. "read pages 1–40 of 120"."""
        plural = f"{self.unit}s"
        if self.unit in ORDERED:
            if self.truncated:
                return f"read {plural} 1–{self.read} of {self.total}"
            return f"read all {self.total} {plural}" if self.total != 1 else f"read the one {self.unit}"
        if self.unit == "sheet":
            if self.truncated:
                return f"read {self.read} of {self.total} sheets"
            return f"read all {self.total} sheets" if self.total != 1 else "read the sheet"
        if self.truncated:
            share = self.read * 100 // max(1, self.total)
            return f"read the first {self.read:,} of {self.total:,} {plural} (about {share}%)"
        return f"read all {self.total:,} {plural}"


def cut_to_tokens(text: str, budget: int) -> str:
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


def marked(section: Section, imaged: dict[int, int]) -> str:
    """A section with its location line; a scanned page says where its image is."""
    head = section.location.label
    if section.source == "none":
        number = section.location.number
        head += (
            f": scanned, shown as image {imaged[number]}" if number in imaged else ": scanned, no text layer (not read)"
        )
    text = section.full_text
    return f"--- {head} ---\n{text}" if text else f"--- {head} ---"


def chunks(doc: Document, imaged: dict[int, int] | None = None) -> list[str]:
    if doc.unit in _SEPARATOR:
        return [block for s in doc.sections for block in s.text.split(_SEPARATOR[doc.unit])]
    return [marked(s, imaged or {}) for s in doc.sections]


def within(doc: Document, budget: int, imaged: dict[int, int] | None = None) -> DocumentText:
    """The document's text from the start, whole units while they fit; a first unit too
    long by itself is cut inside."""
    pieces = chunks(doc, imaged)
    separator = _SEPARATOR.get(doc.unit, "\n\n")
    taken: list[str] = []
    used = 0
    for piece in pieces:
        cost = estimate_tokens(piece) + 1
        if used + cost > budget:
            break
        taken.append(piece)
        used += cost
    truncated = len(taken) < len(pieces)
    if not taken and pieces:  # one enormous first unit: keep what fits of it
        taken = [cut_to_tokens(pieces[0], budget)]
    # Units beyond what the reader kept (pages past MAX_PAGES) count as not read.
    total = max(doc.total, len(pieces)) if doc.unit not in _SEPARATOR else len(pieces)
    read = len(taken)
    return DocumentText(
        doc.filename,
        doc.kind,
        separator.join(taken),
        doc.unit,
        read,
        total,
        truncated or read < total,
        notes=list(doc.notes),
        document=doc,
    )
