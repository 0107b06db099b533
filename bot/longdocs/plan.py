"""Documents cut into parts that each fit one call, at the boundaries a reader would choose.

A part is a run of whole sections (pages, slides, sheets, chapters, a Word file's sections,
runs of lines), never two documents. Parts are balanced (a 1,000-page report in 18 parts of
about 56 pages, not 17 full ones and a stub), and where a PDF's bookmarks say a chapter
begins near the end of a part, the part ends before it. A single section longer than a
part (a novel's chapter, a long Word section) is cut inside, at paragraph breaks, into
pieces. The plan is stored with the job so a restart reads the same parts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from bot.core.tokens import estimate_tokens
from bot.documents.budget import cut_to_tokens, marked
from bot.documents.document import Document, Location
from bot.longdocs.wording import Language

CHAPTER_REACH = 0.4  # a part may end this share of its target early, to end where a chapter begins


@dataclass(frozen=True, slots=True)
class PlanPart:
    number: int  # 1-based, across the job
    document: int  # the job's n-th document (0-based)
    first: int  # index of its first section
    last: int  # index of its last section (inclusive)
    tokens: int  # estimated tokens of its text
    piece: int = 0  # a section cut inside: this piece (1-based) of ``pieces``; 0 when whole sections
    pieces: int = 0


@dataclass(slots=True)
class Plan:
    parts: list[PlanPart]
    part_tokens: int  # the size it was cut for

    def to_dict(self) -> dict:
        return {"part_tokens": self.part_tokens, "parts": [asdict(p) for p in self.parts]}

    @classmethod
    def from_dict(cls, data: dict | None) -> Plan | None:
        if not data or not data.get("parts"):
            return None
        return cls([PlanPart(**p) for p in data["parts"]], int(data.get("part_tokens") or 0))

    def fits(self, docs: list[Document]) -> bool:
        """Whether a stored plan still describes ``docs`` (the same sections)."""
        return all(0 <= p.document < len(docs) and p.last < len(docs[p.document].sections) for p in self.parts) and {
            p.document for p in self.parts
        } == {i for i, d in enumerate(docs) if d.sections}


def section_costs(doc: Document) -> list[int]:
    return [estimate_tokens(marked(s, {})) + 1 for s in doc.sections]


def plan_parts(docs: list[Document], part_tokens: int) -> Plan:
    parts: list[PlanPart] = []
    for index, doc in enumerate(docs):
        for first, last, tokens, piece, pieces in _cut(doc, part_tokens):
            parts.append(PlanPart(len(parts) + 1, index, first, last, tokens, piece, pieces))
    return Plan(parts, part_tokens)


def _cut(doc: Document, limit: int) -> list[tuple[int, int, int, int, int]]:
    costs = section_costs(doc)
    total = sum(costs)
    if not costs:
        return []
    chapters = {page for page, _ in doc.outline} if doc.unit == "page" else set()
    starts = {i for i, s in enumerate(doc.sections) if s.location.number in chapters}
    out: list[tuple[int, int, int, int, int]] = []
    start, used, consumed = 0, 0, 0

    def target() -> float:
        """An even share of what is left (so a part that ended early or late is made up for)."""
        left = total - consumed
        return left / max(1, math.ceil(left / limit))

    def close(end: int) -> None:  # sections start..end-1 become a part
        nonlocal start, used, consumed
        size = sum(costs[start:end])
        if end > start:
            out.append((start, end - 1, size, 0, 0))
        used -= size
        consumed += size
        start = end

    for i, cost in enumerate(costs):
        if cost > limit:  # one section longer than a part: its own pieces
            close(i)
            pieces = math.ceil(cost / limit)
            out.extend((i, i, math.ceil(cost / pieces), n, pieces) for n in range(1, pieces + 1))
            start, used, consumed = i + 1, 0, consumed + cost
            continue
        if used and used + cost > limit:
            close(_chapter_end(starts, costs, start, i, target()) or i)
        used += cost
        if used + cost / 2 >= target():  # the nearest whole section to an even share
            close(_chapter_end(starts, costs, start, i + 1, target()) or i + 1)
    close(len(costs))
    return out


def _chapter_end(starts: set[int], costs: list[int], start: int, end: int, target: float) -> int | None:
    """Where a part running start..end-1 had better end: the last chapter start in its final
    stretch (no earlier than ``1 - CHAPTER_REACH`` of the target)."""
    used = 0
    best = None
    for i in range(start, end):
        if i > start and i in starts and used >= target * (1 - CHAPTER_REACH):
            best = i
        used += costs[i]
    return best


def part_text(doc: Document, part: PlanPart) -> str:
    """The part's text, each section under its location line ("--- page 12 ---")."""
    if part.pieces:
        whole = marked(doc.sections[part.first], {})
        return piece_of(whole, part.piece, part.pieces)
    return "\n\n".join(marked(s, {}) for s in doc.sections[part.first : part.last + 1])


def piece_of(text: str, piece: int, pieces: int) -> str:
    """The ``piece``-th of ``pieces`` runs of ``text`` of about equal tokens, cut at paragraph
    (else line) breaks; a later piece repeats the section's location line."""
    head, _, body = text.partition("\n") if text.startswith("--- ") else ("", "", text)
    size = math.ceil(estimate_tokens(body) / pieces)
    rest = body
    for n in range(1, pieces + 1):
        if n == pieces:
            chunk = rest
        else:
            chunk = cut_to_tokens(rest, size)
            for breaker in ("\n\n", "\n", "。", ". "):
                at = chunk.rfind(breaker)
                if at > len(chunk) // 2:
                    chunk = chunk[: at + len(breaker)]
                    break
        if n == piece:
            label = f"{head[:-4]} (piece {piece} of {pieces}) ---" if head else ""
            return f"{label}\n{chunk.strip()}" if label else chunk.strip()
        rest = rest[len(chunk) :]
    return ""


# --- what a part covers, in words -------------------------------------------------------------

_ZH_UNITS = {"page": "页", "slide": "张幻灯片", "chapter": "章", "section": "节"}


def _numbers(kind: str, first: int, last: int, language: Language) -> str:
    run = f"{first:,}" if first == last else f"{first:,}–{last:,}"
    if language == "zh":
        if kind == "slide":
            return f"幻灯片 {run}"
        return f"第 {run} {_ZH_UNITS.get(kind, kind)}"
    plural = kind if first == last else f"{kind}s"
    return f"{plural} {run}"


def location_words(location: Location, language: Language) -> str:
    """One location as a reader names it ("page 12" / "第 12 页")."""
    title = f"“{location.title}”" if location.title else ""
    if location.kind in ("page", "slide", "chapter", "section"):
        words = _numbers(location.kind, location.number, location.number, language)
        return f"{words}{title if language == 'zh' else (' ' + title if title else '')}"
    if location.kind == "sheet":
        name = title or (f"#{location.number}")
        return f"工作表{name}" if language == "zh" else f"sheet {name}"
    last = max(location.last, location.number)
    if language == "zh":
        return f"第 {location.number:,}–{last:,} {'行' if location.kind == 'lines' else '段'}"
    return location.label


def span(doc: Document, part: PlanPart, language: Language = "en") -> str:
    """What a part covers: "pages 57–110", "第 3–5 章", "slides 1–20", "chapter 4 “市场” (piece 2 of 3)"."""
    first, last = doc.sections[part.first].location, doc.sections[part.last].location
    if part.pieces:
        words = location_words(first, language)
        return (
            f"{words}（第 {part.piece}/{part.pieces} 段）"
            if language == "zh"
            else f"{words} (piece {part.piece} of {part.pieces})"
        )
    if first == last:
        return location_words(first, language)
    if first.kind == last.kind and first.kind in ("page", "slide", "chapter", "section"):
        return _numbers(first.kind, first.number, last.number, language)
    if first.kind == last.kind and first.kind in ("lines", "paragraphs"):
        end = max(last.last, last.number)
        if language == "zh":
            return f"第 {first.number:,}–{end:,} {'行' if first.kind == 'lines' else '段'}"
        return f"{first.kind} {first.number:,}–{end:,}"
    joiner = " 至 " if language == "zh" else " to "
    return location_words(first, language) + joiner + location_words(last, language)


def chapters_within(doc: Document, part: PlanPart) -> list[str]:
    """Titles of the bookmarked chapters that begin inside a part of a PDF."""
    if doc.unit != "page" or not doc.outline:
        return []
    pages = {doc.sections[i].location.number for i in range(part.first, part.last + 1)}
    return [title for page, title in doc.outline if page in pages and title]
