"""Spreadsheets: .xlsx through openpyxl (read-only, streaming) and .csv/.tsv through the
standard library, each sheet a Markdown table with its header row.

A sheet longer than ``preview_rows`` is summarised: its first rows, how many rows it has,
and per-column figures over all its rows (numbers: min / max / mean / sum; dates: range;
text: distinct values and the most common). Rows are streamed and only the preview and the
per-column counters are held, so a 500,000-row export costs little memory; reading stops
after ``MAX_CELLS`` cells and says so.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from bot.documents.archive import label, open_zip
from bot.documents.document import Document, DocumentUnreadable, Location, Section
from bot.documents.text import encoding_of
from bot.documents.textnorm import normalise

PREVIEW_ROWS = 200
MAX_COLUMNS = 50
MAX_CELLS = 2_000_000  # per workbook: about 10–20 s of openpyxl's streaming reader
MAX_CELL_CHARS = 300
DISTINCT_CAP = 2_000  # per column: distinct text values counted exactly up to here
MOST_COMMON = 3
_NUMBER = re.compile(r"-?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?")


def typed(text: str) -> Any:
    """A CSV cell as a number when it is one ("1,234.5" too), for the column figures."""
    text = text.strip()
    if _NUMBER.fullmatch(text):
        plain = text.replace(",", "")
        return float(plain) if "." in plain else int(plain)
    return text


def show(value: Any) -> str:
    """A cell as a person reads it: no 0.30000000000000004, no "00:00:00" on a date."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.10g}"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    text = normalise(str(value)).strip().replace("\r", "").replace("\n", " ").replace("|", "\\|")
    return text if len(text) <= MAX_CELL_CHARS else text[:MAX_CELL_CHARS] + "…"


@dataclass(slots=True)
class Column:
    name: str
    values: int = 0
    numbers: int = 0
    low: float = math.inf
    high: float = -math.inf
    total: float = 0.0
    first: Any = None  # earliest date
    last: Any = None
    dates: int = 0
    texts: Counter[str] = field(default_factory=Counter)
    more_texts: bool = False  # distinct values beyond DISTINCT_CAP were not counted

    def add(self, value: Any) -> None:
        if value is None or value == "":
            return
        self.values += 1
        if isinstance(value, bool):
            value = show(value)
        if isinstance(value, int | float) and math.isfinite(value):
            self.numbers += 1
            self.low, self.high = min(self.low, value), max(self.high, value)
            self.total += value
            return
        if isinstance(value, dt.date | dt.datetime):
            key = value if isinstance(value, dt.datetime) else dt.datetime.combine(value, dt.time())
            self.dates += 1
            self.first = key if self.first is None or key < self.first else self.first
            self.last = key if self.last is None or key > self.last else self.last
            return
        text = show(value)
        if text in self.texts or len(self.texts) < DISTINCT_CAP:
            self.texts[text] += 1
        else:
            self.more_texts = True

    def describe(self) -> str:
        parts = []
        if self.numbers:
            mean = self.total / self.numbers
            parts.append(
                f"{self.numbers:,} numbers, min {show(self.low)}, max {show(self.high)}, "
                f"mean {show(round(mean, 4))}, sum {show(round(self.total, 4))}"
            )
        if self.dates:
            parts.append(f"{self.dates:,} dates from {show(self.first)} to {show(self.last)}")
        texts = sum(self.texts.values())
        if texts or self.more_texts:
            distinct = f"over {DISTINCT_CAP:,}" if self.more_texts else f"{len(self.texts):,}"
            common = ", ".join(f"{v or '(blank)'} ({n:,})" for v, n in self.texts.most_common(MOST_COMMON))
            parts.append(
                f"{self.values - self.numbers - self.dates:,} text values, {distinct} distinct; most common: {common}"
            )
        return f"- {self.name or '(unnamed)'}: " + ("; ".join(parts) if parts else "empty")


@dataclass(slots=True)
class Table:
    """One sheet streamed row by row: the header, a preview, per-column counters."""

    preview_rows: int
    convert: Callable[[Any], Any] | None = None  # applied to values for the column figures only
    header: list[str] | None = None
    preview: list[list[str]] = field(default_factory=list)
    columns: list[Column] = field(default_factory=list)
    rows: int = 0  # data rows (after the header)
    width: int = 0

    def add(self, row: Iterable[Any]) -> int:
        """Take one row; returns the cells it had (for the workbook's cell budget)."""
        cells = list(row)[:MAX_COLUMNS]
        while cells and (cells[-1] is None or cells[-1] == ""):
            cells.pop()
        if not cells:
            return 0
        if self.header is None:
            self.header = [show(c) for c in cells]
            self.columns = [Column(h) for h in self.header]
            self.width = len(cells)
            return len(cells)
        if len(cells) > self.width:
            self.columns += [Column(f"column {i + 1}") for i in range(self.width, len(cells))]
            self.header += [""] * (len(cells) - self.width)
            self.width = len(cells)
        self.rows += 1
        for column, value in zip(self.columns, cells):
            column.add(self.convert(value) if self.convert is not None and isinstance(value, str) else value)
        if len(self.preview) < self.preview_rows:
            self.preview.append([show(c) for c in cells])
        return len(cells)

    def markdown(self) -> str:
        if self.header is None:
            return ""
        width = self.width

        def line(cells: list[str]) -> str:
            return "| " + " | ".join(cells + [""] * (width - len(cells))) + " |"

        out = [line(self.header), "|" + " --- |" * width, *(line(r) for r in self.preview)]
        return "\n".join(out)

    def section(self, number: int, name: str, complete: bool) -> Section:
        shown = len(self.preview)
        body = self.markdown()
        if self.rows > shown or not complete:
            counted = f"{self.rows:,}" if complete else f"at least {self.rows:,} (I stopped counting there)"
            body += (
                f"\n\n[{counted} data rows; the first {shown:,} are shown above. Per column, over "
                f"{'all' if complete else 'the counted'} rows:]\n" + "\n".join(c.describe() for c in self.columns)
            )
        return Section(Location("sheet", number, name, last=shown, of=self.rows), body, blocks=max(1, self.rows))


def read_xlsx(data: bytes, filename: str, preview_rows: int = PREVIEW_ROWS) -> Document:
    from openpyxl import load_workbook

    name = label(filename)
    open_zip(data, filename, "an Excel workbook").close()
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - zip, XML and openpyxl errors all mean "damaged"
        raise DocumentUnreadable(
            f"{name} could not be read as an Excel workbook (it may be damaged: {type(exc).__name__})"
        ) from None
    sections: list[Section] = []
    notes: list[str] = []
    budget = MAX_CELLS
    try:
        sheets = book.worksheets
        for number, sheet in enumerate(sheets, 1):
            table = Table(preview_rows)
            complete = True
            try:
                for row in sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS):
                    if budget <= 0:
                        complete = False
                        break
                    budget -= max(1, table.add(row))
            except Exception as exc:  # noqa: BLE001 - one broken sheet must not lose the others
                notes.append(f"sheet “{sheet.title}” of {name} could not be read to the end ({type(exc).__name__})")
                complete = False
            title = normalise(sheet.title) + (" (hidden)" if sheet.sheet_state != "visible" else "")
            sections.append(table.section(number, title, complete))
            if not complete and budget <= 0:
                notes.append(f"{name} is very large: I counted {MAX_CELLS:,} cells and stopped")
                skipped = len(sheets) - number
                if skipped:
                    notes.append(f"{skipped} more sheet(s) of {name} were not read")
                break
    finally:
        book.close()
    if not sections or all(s.location.of == 0 and not s.text for s in sections):
        raise DocumentUnreadable(f"{name} has no data in its sheets")
    return Document(filename, "xlsx", "sheet", sections, len(book.sheetnames), notes)


def read_csv(data: bytes, filename: str, preview_rows: int = PREVIEW_ROWS) -> Document:
    name = label(filename)
    codec, skip = encoding_of(data)
    if codec == "binary":
        raise DocumentUnreadable(f"{name} doesn't look like a CSV file (it contains binary data)")
    notes = [f"some characters in {name} could not be decoded and were replaced"] if codec == "utf-8?" else []
    stream = io.TextIOWrapper(
        io.BytesIO(data[skip:] if skip else data), encoding=codec.rstrip("?"), errors="replace", newline=""
    )
    sample = stream.read(64 * 1024)
    stream.seek(0)
    tab = PurePath(filename.lower()).suffix == ".tsv"
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters="\t" if tab else ",\t;|")
    except csv.Error:
        dialect = csv.excel_tab if tab else csv.excel
    table = Table(preview_rows, typed)
    budget = MAX_CELLS
    complete = True
    try:
        for row in csv.reader(stream, dialect):
            if budget <= 0:
                complete = False
                notes.append(f"{name} is very large: I counted {MAX_CELLS:,} cells and stopped")
                break
            budget -= max(1, table.add(row))
    except csv.Error as exc:
        notes.append(f"{name} is malformed after data row {table.rows:,} ({exc}); the rest was not read")
        complete = False
    if table.header is None:
        raise DocumentUnreadable(f"{name} is empty")
    title = PurePath(filename).name if filename else ""
    return Document(filename, "csv", "sheet", [table.section(1, title, complete)], 1, notes)
