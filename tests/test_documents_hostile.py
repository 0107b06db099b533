"""Issue 21: hostile and broken files get one clear sentence for the user, never a crash,
a hang, or memory without bound: zip bombs, encrypted and DRM-protected files, corrupt
files of every format, huge and wide sheets, malformed CSV, entity bombs in e-books."""

from __future__ import annotations

import io
import time
import zipfile
from types import SimpleNamespace

import pytest
from openpyxl import Workbook
from pypdf import PdfReader, PdfWriter

from bot.documents import MAX_BYTES, DocumentUnreadable, read, to_parts
from bot.documents import sheets as sheets_module
from bot.platform.messages import Attachment
from tests.test_documents import make_pdf
from tests.test_documents_formats import make_epub, make_pptx, make_xlsx

SETTINGS = SimpleNamespace(context_tokens=200_000, max_tokens=4096, vision=True, max_images=4)


def zipped(members: dict[str, bytes], *, encrypted: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    out = bytearray(buffer.getvalue())
    at = out.find(b"PK\x01\x02")
    while encrypted and at >= 0:  # mark the member encrypted in the central directory, as zip tools do
        length = int.from_bytes(out[at + 28 : at + 30], "little")
        if out[at + 46 : at + 46 + length] == encrypted.encode():
            out[at + 8] |= 0x1
        at = out.find(b"PK\x01\x02", at + 46)
    return bytes(out)


@pytest.mark.parametrize("filename", ["bomb.docx", "bomb.pptx", "bomb.xlsx", "bomb.epub"])
def test_zip_bombs_are_refused_from_the_directory(filename: str) -> None:
    bomb = zipped({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"\0" * (40 * 1024 * 1024)})
    assert len(bomb) < 100_000
    started = time.perf_counter()
    with pytest.raises(DocumentUnreadable, match="expands to far more than its size"):
        read(bomb, "", filename)
    assert time.perf_counter() - started < 1.0  # nothing was inflated


def test_too_many_members_and_encrypted_members() -> None:
    many = zipped({f"x/{i}.xml": b"" for i in range(20_001)})
    with pytest.raises(DocumentUnreadable, match="too many parts"):
        read(many, "", "many.xlsx")
    locked = zipped(
        {"[Content_Types].xml": b"<Types/>", "ppt/presentation.xml": b"<p/>"}, encrypted="ppt/presentation.xml"
    )
    with pytest.raises(DocumentUnreadable, match="is encrypted; send an unprotected copy"):
        read(locked, "", "locked.pptx")


def test_password_protected_office_files_say_so() -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512  # Office wraps encrypted .pptx/.xlsx in OLE
    for name in ("secret.pptx", "secret.xlsx"):
        with pytest.raises(DocumentUnreadable, match="password-protected or in an old Office format"):
            read(ole, "", name)


@pytest.mark.parametrize(
    ("filename", "data", "what"),
    [
        ("deck.pptx", make_pptx()[: len(make_pptx()) // 2], "PowerPoint file"),
        ("deck.pptx", b"PK\x03\x04garbage", "PowerPoint file"),
        ("book.xlsx", make_xlsx(50)[: len(make_xlsx(50)) // 2], "Excel workbook"),
        ("book.xlsx", zipped({"[Content_Types].xml": b"<Types/>"}), "Excel workbook"),
        ("book.epub", make_epub()[:-300], "e-book"),
        ("book.epub", zipped({"mimetype": b"application/epub+zip"}), "e-book"),
        ("report.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 100, "PDF"),
    ],
)
def test_corrupt_files_of_every_format(filename: str, data: bytes, what: str) -> None:
    with pytest.raises(DocumentUnreadable, match=f"could not be read as an? {what}"):
        read(data, "", filename)


def test_truncated_pdf_reads_what_it_can_or_says_why() -> None:
    whole = make_pdf([f"page {i} text" for i in range(1, 11)])
    try:
        doc = read(whole[: len(whole) * 2 // 3], "application/pdf", "cut.pdf")
    except DocumentUnreadable as exc:
        assert "could not be read as a PDF" in str(exc)
    else:  # PDFium rebuilds the cross-reference table of a cut file
        assert doc.sections and "page 1 text" in doc.sections[0].text


def test_encrypted_pdf_with_a_user_password() -> None:
    reader = PdfReader(io.BytesIO(make_pdf(["secret"])))
    writer = PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.encrypt(user_password="pw", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(DocumentUnreadable, match="password-protected; send an unprotected copy"):
        read(out.getvalue(), "application/pdf", "locked.pdf")


def test_drm_protected_epub() -> None:
    with pytest.raises(DocumentUnreadable, match="protected by DRM"):
        read(make_epub(drm=True), "", "drm.epub")


def test_entity_bomb_in_an_epub_is_refused_quickly() -> None:
    laughs = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    opf = (
        f'<?xml version="1.0"?><!DOCTYPE package [<!ENTITY l0 "lol">{laughs}]>'
        '<package xmlns="http://www.idpf.org/2007/opf"><metadata><title>&l9;</title></metadata>'
        '<manifest><item id="c" href="c.xhtml" media-type="application/xhtml+xml"/></manifest>'
        '<spine><itemref idref="c"/></spine></package>'
    )
    book = zipped(
        {
            "mimetype": b"application/epub+zip",
            "META-INF/container.xml": b'<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            b'<rootfiles><rootfile full-path="content.opf"/></rootfiles></container>',
            "content.opf": opf.encode(),
            "c.xhtml": b"<html><body><p>&l9; \xe6\xad\xa3\xe6\x96\x87</p></body></html>",
        }
    )
    started = time.perf_counter()
    with pytest.raises(DocumentUnreadable, match="could not be read as an e-book"):
        read(book, "", "laughs.epub")  # libxml2 stops at the amplification, the spine is never reached
    assert time.perf_counter() - started < 2.0


def test_deeply_nested_chapter_does_not_crash() -> None:
    deep = b"<html><body>" + b"<div>" * 50_000 + "深处".encode() + b"</div>" * 50_000 + b"</body></html>"
    book = zipped(
        {
            "mimetype": b"application/epub+zip",
            "META-INF/container.xml": b'<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            b'<rootfiles><rootfile full-path="o.opf"/></rootfiles></container>',
            "o.opf": b'<package xmlns="http://www.idpf.org/2007/opf"><manifest><item id="c" href="c.xhtml" '
            b'media-type="application/xhtml+xml"/></manifest><spine><itemref idref="c"/></spine>'
            b"</package>",
            "c.xhtml": deep,
        }
    )
    try:
        doc = read(book, "", "deep.epub")
    except DocumentUnreadable as exc:
        assert "no text I can read" in str(exc)
    else:
        assert doc.sections


def test_huge_sheet_stops_counting_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sheets_module, "MAX_CELLS", 4_000)
    doc = read(make_xlsx(2_000), "", "huge.xlsx")
    sales = doc.sections[0]
    assert "at least 999 (I stopped counting there) data rows" in sales.text
    assert any("I counted 4,000 cells and stopped" in n for n in doc.notes)
    assert any("1 more sheet(s)" in n for n in doc.notes) and doc.total == 2 and len(doc.sections) == 1


def test_wide_sheet_keeps_fifty_columns() -> None:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("wide")
    sheet.append([f"c{i}" for i in range(16_384)])
    sheet.append(list(range(16_384)))
    buffer = io.BytesIO()
    book.save(buffer)
    doc = read(buffer.getvalue(), "", "wide.xlsx")
    assert doc.sections[0].text.splitlines()[0].count("|") == 51


def test_csv_with_a_giant_field_keeps_the_rows_before_it() -> None:
    data = ('a,b\n1,2\n3,"' + "x" * 300_000 + '"\n5,6\n').encode()
    doc = read(data, "text/csv", "odd.csv")
    assert "| 1 | 2 |" in doc.sections[0].text
    assert any("is malformed after data row 1" in n for n in doc.notes)


def test_long_csv_stays_a_bounded_prompt() -> None:
    rows = "城市,销量,备注\n" + "".join(f"城市{i % 300},{i},{'备注' * 20}\n" for i in range(100_000))
    doc = read(rows.encode("gbk"), "", "big.csv")
    text = doc.sections[0].text
    assert len(text) < 40_000 and "[100,000 data rows; the first 200 are shown above." in text
    assert "- 城市: 100,000 text values, 300 distinct" in text


def test_files_over_the_size_limit() -> None:
    with pytest.raises(DocumentUnreadable, match="is too large"):
        read(b"%PDF-" + b"\0" * MAX_BYTES, "application/pdf", "big.pdf")


@pytest.mark.parametrize("data", [b"PK\x03\x04 not a zip", make_epub(drm=True), b"%PDF-1.4 broken"])
async def test_to_parts_turns_every_failure_into_a_note_and_a_notice(data: bytes) -> None:
    for name in ("a.pptx", "b.xlsx", "c.epub", "d.pdf"):
        parts, notices = await to_parts(Attachment(data, "", name), SETTINGS)
        assert [p.kind for p in parts] == ["note"] and len(notices) == 1 and name in notices[0]
