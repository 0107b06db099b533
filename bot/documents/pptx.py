"""PowerPoint (.pptx) through python-pptx: slide by slide, the text of its shapes in reading
order (top to bottom, then left to right, into groups), tables as Markdown rows, chart
titles, and the slide's speaker notes apart."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any

from bot.documents.archive import label, open_zip
from bot.documents.document import Document, DocumentUnreadable, Location, Section
from bot.documents.textnorm import normalise

MAX_SLIDES = 2_000
ROW_TOLERANCE = 914400 // 8  # EMU: shapes whose tops differ less than 1/8 inch share a row


def _reading_order(shapes: Iterable[Any]) -> list[Any]:
    def key(shape: Any) -> tuple[int, int]:
        top, left = shape.top, shape.left
        if top is None or left is None:  # inherited placeholders without a position: keep them first
            return (-1, -1)
        return (int(top) // ROW_TOLERANCE, int(left))

    return sorted(shapes, key=key)


def _cell(text: str) -> str:
    return text.strip().replace("\n", " ").replace("|", "\\|")


def _shape_text(shape: Any) -> Iterator[str]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
        for child in _reading_order(shape.shapes):
            yield from _shape_text(child)
        return
    if shape.has_text_frame:
        text = "\n".join(p.text for p in shape.text_frame.paragraphs).strip()
        if text:
            yield text
    if getattr(shape, "has_table", False) and shape.has_table:
        rows = [[_cell(c.text) for c in row.cells] for row in shape.table.rows]
        rows = [r for r in rows if any(r)]
        if rows:
            lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(rows[0])]
            lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
            yield "\n".join(lines)
    if getattr(shape, "has_chart", False) and shape.has_chart:
        chart = shape.chart
        title = chart.chart_title.text_frame.text.strip() if chart.has_title else ""
        series = ", ".join(s.name for s in chart.plots[0].series) if len(chart.plots) else ""
        yield f"[chart{': ' + title if title else ''}{' — series: ' + series if series else ''}]"


def _title(slide: Any) -> str:
    shape = slide.shapes.title
    return shape.text_frame.text.strip().replace("\n", " ") if shape is not None and shape.has_text_frame else ""


def read_pptx(data: bytes, filename: str) -> Document:
    from pptx import Presentation

    name = label(filename)
    open_zip(data, filename, "a PowerPoint file").close()
    try:
        deck = Presentation(io.BytesIO(data))
        slides = list(deck.slides)
    except Exception as exc:  # noqa: BLE001 - zip, XML and python-pptx errors all mean "damaged"
        raise DocumentUnreadable(
            f"{name} could not be read as a PowerPoint file (it may be damaged: {type(exc).__name__})"
        ) from None
    sections: list[Section] = []
    notes: list[str] = []
    hidden = 0
    for number, slide in enumerate(slides[:MAX_SLIDES], 1):
        try:
            body = "\n".join(text for shape in _reading_order(slide.shapes) for text in _shape_text(shape))
            spoken = (
                slide.notes_slide.notes_text_frame.text.strip()
                if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None
                else ""
            )
            title = _title(slide)
        except Exception as exc:  # noqa: BLE001 - one broken slide must not lose the others
            notes.append(f"slide {number} of {name} could not be read ({type(exc).__name__})")
            continue
        if slide.element.get("show") == "0":
            hidden += 1
            title = f"{title} (hidden)".strip()
        sections.append(Section(Location("slide", number, normalise(title)), normalise(body), notes=normalise(spoken)))
    if hidden:
        notes.append(f"{hidden} hidden slide(s) of {name} were read too (marked hidden)")
    if len(slides) > MAX_SLIDES:
        notes.append(f"{name} has {len(slides):,} slides; I read the first {MAX_SLIDES:,}")
    if not slides:
        raise DocumentUnreadable(f"{name} has no slides")
    if all(s.empty for s in sections):
        raise DocumentUnreadable(
            f"{name} has no text on its slides (only pictures?); send the slides as images or a PDF instead"
        )
    return Document(filename, "pptx", "slide", sections, len(slides), notes)
