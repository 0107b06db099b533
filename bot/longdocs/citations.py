"""Where an answer found things: the locations it cites, checked against the documents, as
one "Sources" line of Markdown (every platform's adapter renders Markdown).

The model is asked to cite as the section markers name places ("[page 12]", "[slide 3]",
"[sheet “销售”]", "[chapter 4]"); it also writes "【第 12 页】", "[p. 12–14]", "[report.pdf,
page 3]" and the like, which are read too. A location the documents do not have (page 1,204
of a 1,000-page report) is left out of the line, not repeated as if it were real.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.documents.document import Document, ranges
from bot.longdocs.wording import Language, pick

_BRACKETS = re.compile(r"[\[【]([^\[\]【】\n]{1,160})[\]】]")
_NUMBERS = r"(\d[\d,]*(?:\s*(?:[-–—~至到]|,\s|、|，|and|&)\s*\d[\d,]*)*)"
_EN = re.compile(r"\b(pages?|pp?\.|slides?|chapters?|ch\.|sections?|lines?|paragraphs?)\s*" + _NUMBERS, re.I)
_ZH = re.compile(r"第\s*" + _NUMBERS + r"\s*(页|章|节|段|行)")
_ZH_SLIDE = re.compile(r"幻灯片\s*" + _NUMBERS)
_SHEET = re.compile(r"(?:\bsheet|工作表)\s*[“\"'「]([^”\"'」\]】]{1,60})[”\"'」]", re.I)
_KINDS = {
    "page": "page",
    "pages": "page",
    "p.": "page",
    "pp.": "page",
    "slide": "slide",
    "slides": "slide",
    "chapter": "chapter",
    "chapters": "chapter",
    "ch.": "chapter",
    "section": "section",
    "sections": "section",
    "line": "lines",
    "lines": "lines",
    "paragraph": "paragraphs",
    "paragraphs": "paragraphs",
    "页": "page",
    "章": "chapter",
    "节": "section",
    "段": "paragraphs",
    "行": "lines",
}
MAX_RUN = 30  # a cited range longer than this is a summary of the document, not a citation


@dataclass(slots=True)
class Cited:
    """Locations cited in one document: numbers by kind, sheets by name."""

    numbers: dict[str, set[int]] = field(default_factory=dict)
    sheets: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return any(self.numbers.values()) or bool(self.sheets)


def _numbers(text: str) -> list[int]:
    text = re.sub(r"(\d),(\d{3})(?!\d)", r"\1\2", text)  # 1,000 is one number
    out: list[int] = []
    for chunk in re.split(r"\s*(?:,\s|、|，|and|&)\s*", text):
        bounds = [int(n) for n in re.findall(r"\d+", chunk)]
        if len(bounds) >= 2:
            if bounds[0] <= bounds[1] and bounds[1] - bounds[0] <= MAX_RUN:
                out.extend(range(bounds[0], bounds[1] + 1))
        elif bounds:
            out.append(bounds[0])
    return out


def _valid(doc: Document) -> dict[str, set[int]]:
    """The numbered locations a document has, by kind."""
    out: dict[str, set[int]] = {}
    for section in doc.sections:
        loc = section.location
        if loc.kind in ("lines", "paragraphs"):
            out.setdefault(loc.kind, set()).update(range(loc.number, max(loc.number, loc.last) + 1))
        elif loc.kind != "sheet":
            out.setdefault(loc.kind, set()).add(loc.number)
    if doc.unit == "page":
        out["page"] = set(range(1, doc.total + 1))
    return out


def _which(inside: str, docs: list[Document]) -> list[int]:
    """The documents a citation names (by file name or stem); all of them when it names none."""
    lowered = inside.lower()
    named = [
        i
        for i, d in enumerate(docs)
        if d.filename and (d.filename.lower() in lowered or d.filename.rsplit(".", 1)[0].lower() in lowered)
    ]
    return named or list(range(len(docs)))


def cited(answer: str, docs: list[Document]) -> list[Cited]:
    """The locations ``answer`` cites that the documents have, one ``Cited`` per document."""
    out = [Cited() for _ in docs]
    valid = [_valid(d) for d in docs]
    sheet_names = [
        {
            s.location.title.lower(): s.location.title
            for s in d.sections
            if s.location.kind == "sheet" and s.location.title
        }
        for d in docs
    ]
    for bracket in _BRACKETS.finditer(answer):
        inside = bracket.group(1)
        found: list[tuple[str, list[int]]] = []
        found += [(_KINDS[m.group(1).lower()], _numbers(m.group(2))) for m in _EN.finditer(inside)]
        found += [(_KINDS[m.group(2)], _numbers(m.group(1))) for m in _ZH.finditer(inside)]
        found += [("slide", _numbers(m.group(1))) for m in _ZH_SLIDE.finditer(inside)]
        sheets = [m.group(1).strip().lower() for m in _SHEET.finditer(inside)]
        for index in _which(inside, docs):
            for kind, numbers in found:
                good = valid[index].get(kind, set()).intersection(numbers)
                if good:
                    out[index].numbers.setdefault(kind, set()).update(good)
            out[index].sheets.update(sheet_names[index][s] for s in sheets if s in sheet_names[index])
    # A citation that could be several documents' (no name given) is kept for the first that has it.
    if len(docs) > 1:
        seen: set[tuple[str, int]] = set()
        for c in out:
            for kind, cited in c.numbers.items():
                unseen = {n for n in cited if (kind, n) not in seen}
                seen.update((kind, n) for n in cited)
                c.numbers[kind] = unseen
    return out


_ZH_UNIT = {"page": "页", "chapter": "章", "section": "节", "lines": "行", "paragraphs": "段"}
_ORDER = ("page", "slide", "chapter", "section", "paragraphs", "lines")


def _places(doc: Document, c: Cited, language: Language) -> list[str]:
    titles: dict[tuple[str, int], str] = {
        (s.location.kind, s.location.number): s.location.title for s in doc.sections if s.location.title
    }
    out = []
    for kind in _ORDER:
        numbers = sorted(c.numbers.get(kind, ()))
        if not numbers:
            continue
        run = ranges(numbers)
        if language == "zh":
            run = run.replace(", ", "、")
            one = titles.get((kind, numbers[0]), "") if len(numbers) == 1 else ""
            where = f"幻灯片 {run}" if kind == "slide" else f"第 {run} {_ZH_UNIT[kind]}"
            out.append(where + (f"“{one}”" if one else ""))
        else:
            single = len(numbers) == 1
            word = kind if kind not in ("lines", "paragraphs") else kind[:-1]
            one = titles.get((kind, numbers[0]), "") if single else ""
            out.append(f"{word if single else word + 's'} {run}" + (f" “{one}”" if one else ""))
    out += [pick(language, f"工作表“{name}”", f"sheet “{name}”") for name in sorted(c.sheets)]
    return out


def sources_line(docs: list[Document], found: list[Cited], language: Language, *, fallback: str = "") -> str:
    """ "**Sources:** report.pdf — pages 3, 12–14 · deck.pptx — slide 4"; ``fallback`` (what was
    read, e.g. "report.pdf — pages 1–1,000, read in 19 parts") when nothing valid was cited."""
    head = pick(language, "**来源：**", "**Sources:**")
    entries = []
    for doc, c in zip(docs, found):
        places = _places(doc, c, language) if c else []
        if places:
            joined = ("；" if language == "zh" else "; ").join(places)
            name = f"《{doc.filename}》" if language == "zh" else f"{doc.filename} —"
            entries.append(f"{name}{joined}" if language == "zh" else f"{name} {joined}")
    if not entries:
        return f"{head} {fallback}" if fallback else ""
    return f"{head} " + " · ".join(entries)
