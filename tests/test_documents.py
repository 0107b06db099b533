"""Document text extraction: real PDF and DOCX files built in the test, encodings, budgets,
and clear answers for what cannot be read."""

from __future__ import annotations

import io
from types import SimpleNamespace

import docx
import pytest
from pypdf import PdfReader, PdfWriter

from bot.core.tokens import estimate_tokens
from bot.documents import (
    DocumentUnreadable,
    decode_text,
    document_budget,
    extract_text,
    read_document,
    to_parts,
)
from bot.platform.messages import Attachment

BIG = 100_000


def make_pdf(pages: list[str]) -> bytes:
    """A minimal, valid multi-page PDF with one line of Helvetica text per page."""
    objects: list[bytes] = []
    n = len(pages)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, text in enumerate(pages):
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode() if text else b""
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def make_docx(paragraphs: list[str], table: list[list[str]] | None = None, heading: str = "") -> bytes:
    document = docx.Document()
    if heading:
        document.add_heading(heading, level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        t = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                t.cell(r, c).text = cell
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


# --- PDF -------------------------------------------------------------------------------


def test_pdf_pages_are_read_in_order() -> None:
    data = make_pdf([f"Quarterly report page {i}: revenue grew" for i in range(1, 6)])
    doc = extract_text(data, "application/pdf", "report.pdf", BIG)
    assert (doc.kind, doc.read, doc.total, doc.truncated) == ("pdf", 5, 5, False)
    assert doc.text.index("page 1:") < doc.text.index("page 5:")
    assert "--- page 3 ---" in doc.text
    assert doc.statement == "read all 5 pages"


def test_long_pdf_is_cut_at_a_page_and_says_what_was_read() -> None:
    data = make_pdf([f"Page {i} " + "lorem ipsum dolor sit amet " * 10 for i in range(1, 121)])
    per_page = estimate_tokens("--- page 1 ---\nPage 1 " + "lorem ipsum dolor sit amet " * 10) + 1
    doc = extract_text(data, "", "long.pdf", per_page * 40 + 5)
    assert doc.truncated and doc.total == 120 and doc.read == 40
    assert doc.statement == "read pages 1–40 of 120"
    assert doc.text.startswith("[“long.pdf” is long: I read pages 1–40 of 120")
    assert "Page 40 " in doc.text and "Page 41 " not in doc.text


def test_password_protected_pdf_gets_a_clear_message() -> None:
    reader = PdfReader(io.BytesIO(make_pdf(["secret plans"])))
    writer = PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.encrypt(user_password="hunter2", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(DocumentUnreadable, match="password-protected"):
        extract_text(out.getvalue(), "application/pdf", "locked.pdf", BIG)


def test_pdf_with_only_an_owner_password_is_read() -> None:
    reader = PdfReader(io.BytesIO(make_pdf(["printing restricted but readable"])))
    writer = PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    doc = extract_text(out.getvalue(), "application/pdf", "restricted.pdf", BIG)
    assert "printing restricted but readable" in doc.text


def test_scanned_and_corrupt_pdfs() -> None:
    with pytest.raises(DocumentUnreadable, match="no text layer"):
        extract_text(make_pdf(["", ""]), "application/pdf", "scan.pdf", BIG)
    with pytest.raises(DocumentUnreadable, match="could not be read as a PDF"):
        extract_text(b"%PDF-1.4\nthis is not really a pdf", "application/pdf", "broken.pdf", BIG)


# --- DOCX ------------------------------------------------------------------------------


def test_docx_paragraphs_headings_and_tables() -> None:
    data = make_docx(
        ["第一段：市场概况。", "第二段：竞品分析。"], [["产品", "价格"], ["防晒霜", "99元"]], heading="年度报告"
    )
    doc = extract_text(
        data, "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "报告.docx", BIG
    )
    assert doc.kind == "docx" and not doc.truncated
    assert doc.text.splitlines()[0] == "# 年度报告"
    assert "第二段：竞品分析。" in doc.text and "| 防晒霜 | 99元 |" in doc.text


def test_long_docx_is_truncated_by_paragraph() -> None:
    paragraphs = [f"第{i}段。" + "中文内容" * 50 for i in range(1, 201)]
    doc = extract_text(make_docx(paragraphs), "", "long.docx", 2_000)
    assert doc.truncated and doc.unit == "paragraph" and doc.total == 200 and 0 < doc.read < 200
    assert f"read the first {doc.read} of 200 paragraphs" in doc.text
    assert estimate_tokens(doc.text) <= 2_000 + 100


def test_corrupt_and_old_word_files() -> None:
    with pytest.raises(DocumentUnreadable, match="damaged"):
        extract_text(b"PK\x03\x04 not a zip", "", "broken.docx", BIG)
    with pytest.raises(DocumentUnreadable, match="old Word format|password-protected"):
        extract_text(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "", "legacy.docx", BIG)
    with pytest.raises(DocumentUnreadable, match="Word 97–2003"):
        extract_text(b"\xd0\xcf\x11\xe0", "application/msword", "old.doc", BIG)


# --- text ------------------------------------------------------------------------------

CHINESE = "这是一份关于夏季防晒市场的中文报告。\n第二行：消费者更关注清爽肤感。"


@pytest.mark.parametrize(
    "encoded",
    [
        CHINESE.encode("utf-8"),
        b"\xef\xbb\xbf" + CHINESE.encode("utf-8"),
        CHINESE.encode("gb18030"),
        CHINESE.encode("gbk"),
        b"\xff\xfe" + CHINESE.encode("utf-16-le"),
    ],
)
def test_chinese_text_files_in_common_encodings(encoded: bytes) -> None:
    doc = extract_text(encoded, "text/plain", "报告.txt", BIG)
    assert doc.text == CHINESE.replace("\r\n", "\n")


def test_markdown_and_other_text_types() -> None:
    assert "# Title" in extract_text(b"# Title\n\nbody", "text/markdown", "notes.md", BIG).text
    assert extract_text(b'{"a": 1}', "application/json", "data.json", BIG).text == '{"a": 1}'
    assert extract_text(b"a,b\n1,2", "application/octet-stream", "table.csv", BIG).kind == "csv"  # a sheet now


def test_long_text_is_cut_at_a_line() -> None:
    text = "\n".join(f"第{i}行内容" for i in range(1, 1001))
    doc = extract_text(text.encode(), "text/plain", "long.txt", 500)
    assert doc.truncated and doc.unit == "line" and doc.total == 1000
    assert "read the first" in doc.text and "of 1,000 lines" in doc.text
    assert "第1行内容" in doc.text and "第1000行内容" not in doc.text


def test_binary_unknown_and_empty_files() -> None:
    with pytest.raises(DocumentUnreadable, match="binary"):
        extract_text(b"\x89\xff\x00\x01" * 100, "text/plain", "weird.txt", BIG)
    with pytest.raises(DocumentUnreadable, match="“sheet.xlsx” could not be read as an Excel workbook"):
        extract_text(b"PK\x03\x04", "application/vnd.ms-excel", "sheet.xlsx", BIG)  # read since issue 21
    with pytest.raises(DocumentUnreadable, match="empty"):
        extract_text(b"", "text/plain", "empty.txt", BIG)


def test_decode_falls_back_with_a_note() -> None:
    text, notes = decode_text(b"ok \xff done", "x.txt")  # 0xFF is invalid in UTF-8 and GB18030
    assert text == "ok \ufffd done"
    assert notes == ["some characters in “x.txt” could not be decoded and were replaced"]


# --- what the core calls -------------------------------------------------------------------


async def test_to_parts_gives_a_document_part_and_notices() -> None:
    settings = SimpleNamespace(context_tokens=200_000, max_tokens=4096)
    assert document_budget(settings) == int((200_000 - 4096) * 0.6)
    att = Attachment(make_pdf(["Hello PDF"]), "application/pdf", "hello.pdf")
    parts, notices = await to_parts(att, settings)
    assert notices == [] and len(parts) == 1
    assert parts[0].kind == "document" and "Hello PDF" in parts[0].text
    assert parts[0].data["filename"] == "hello.pdf" and parts[0].data["total"] == 1

    long = Attachment(make_pdf([f"Page {i} " + "words " * 40 for i in range(30)]), "application/pdf", "l.pdf")
    parts, notices = await to_parts(long, settings, budget_tokens=300)
    assert parts[0].data["truncated"] and notices and notices[0].startswith("“l.pdf” is long: I read pages 1–")

    bad = Attachment(b"\x00\x01", "application/zip", "archive.zip")
    parts, notices = await to_parts(bad, settings)
    assert parts[0].kind == "note" and "archive.zip" in parts[0].text
    assert notices == [
        "I can't read files like “archive.zip” (application/zip); I read .pdf, .docx, .pptx, "
        ".xlsx, .csv, .epub, .txt, .md and other text files."
    ]


async def test_reading_runs_off_the_event_loop() -> None:
    doc = await read_document(make_pdf(["async"]), "application/pdf", "a.pdf", BIG)
    assert "async" in doc.text
