"""Issue 21: .pptx, .xlsx, .csv, .epub, .docx and text files read into sections a user can
cite, from files the tests write with the real libraries (python-pptx, openpyxl, zipfile)."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from types import SimpleNamespace

import docx
import pytest
from openpyxl import Workbook
from pptx import Presentation
from pptx.util import Inches

from bot.documents import extract_text, read, to_parts
from bot.documents.document import Location
from bot.platform.messages import Attachment

BIG = 100_000
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- PowerPoint ----------------------------------------------------------------------------


def make_pptx(hidden_third: bool = False) -> bytes:
    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[0])
    slide.shapes.title.text = "新品定价策略"
    slide.placeholders[1].text = "2024 年夏季"
    slide.notes_slide.notes_text_frame.text = "开场：先讲结论，再讲数据。"

    slide = deck.slides.add_slide(deck.slide_layouts[5])  # title only
    slide.shapes.title.text = "竞品价格"
    # Added in the wrong order on purpose: reading order is top to bottom, then left to right.
    right = slide.shapes.add_textbox(Inches(5), Inches(2), Inches(3), Inches(1))
    right.text_frame.text = "右栏：品牌乙 129 元"
    left = slide.shapes.add_textbox(Inches(0.5), Inches(2), Inches(3), Inches(1))
    left.text_frame.text = "左栏：品牌甲 99 元"
    table = slide.shapes.add_table(3, 2, Inches(0.5), Inches(4), Inches(6), Inches(1.5)).table
    for r, row in enumerate([["品牌", "价格"], ["甲", "99"], ["乙", "129"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    slide.notes_slide.notes_text_frame.text = "强调：乙的价格高出 30%。"

    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "建议"
    slide.placeholders[1].text = "定价 109 元\n首发赠试用装"
    if hidden_third:
        slide.element.set("show", "0")
    buffer = io.BytesIO()
    deck.save(buffer)
    return buffer.getvalue()


def test_pptx_slides_in_order_with_reading_order_tables_and_notes() -> None:
    doc = read(make_pptx(), PPTX, "定价.pptx")
    assert (doc.kind, doc.unit, doc.pages) == ("pptx", "slide", 3)
    first, second, third = doc.sections
    assert first.location == Location("slide", 1, "新品定价策略") and "2024 年夏季" in first.text
    assert first.notes == "开场：先讲结论，再讲数据。"
    assert (
        second.text.index("竞品价格")
        < second.text.index("左栏")
        < second.text.index("右栏")
        < second.text.index("| 品牌 | 价格 |")
    )
    assert "| 乙 | 129 |" in second.text and second.notes == "强调：乙的价格高出 30%。"
    assert third.location.label == "slide 3 “建议”" and "首发赠试用装" in third.text

    text = extract_text(make_pptx(), PPTX, "定价.pptx", BIG)
    assert text.statement == "read all 3 slides"
    assert "--- slide 2 “竞品价格” ---" in text.text and "[speaker notes] 强调" in text.text


def test_hidden_slides_are_read_and_marked() -> None:
    doc = read(make_pptx(hidden_third=True), PPTX, "deck.pptx")
    assert doc.sections[2].location.title == "建议 (hidden)"
    assert any("hidden" in note for note in doc.notes)


def test_long_deck_is_cut_at_a_slide() -> None:
    deck = Presentation()
    for i in range(1, 41):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = f"第 {i} 页"
        slide.placeholders[1].text = "要点内容" * 60
    buffer = io.BytesIO()
    deck.save(buffer)
    text = extract_text(buffer.getvalue(), PPTX, "long.pptx", 3_000)
    assert text.truncated and 0 < text.read < 40 and text.total == 40
    assert text.text.startswith(f"[“long.pptx” is long: I read slides 1–{text.read} of 40")


# --- Excel -----------------------------------------------------------------------------------


def make_xlsx(rows: int) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "销售"
    sheet.append(["城市", "销量", "单价", "日期"])
    cities = ["上海", "北京", "广州", "深圳"]
    for i in range(rows):
        sheet.append(
            [
                cities[i % 4] if i % 10 else "上海",
                i + 1,
                99.5 if i % 2 else 0.1 + 0.2,
                dt.datetime(2024, 1, 1) + dt.timedelta(days=i % 366),
            ]
        )
    notes = book.create_sheet("说明")
    notes.append(["字段", "含义"])
    notes.append(["销量", "件数"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_xlsx_sheets_are_tables_with_their_header() -> None:
    doc = read(make_xlsx(3), XLSX, "sales.xlsx")
    assert (doc.kind, doc.unit, doc.pages) == ("xlsx", "sheet", 2)
    sales, notes = doc.sections
    lines = sales.text.splitlines()
    assert lines[0] == "| 城市 | 销量 | 单价 | 日期 |" and lines[1] == "| --- | --- | --- | --- |"
    assert lines[2] == "| 上海 | 1 | 0.3 | 2024-01-01 |"  # no 0.30000000000000004, no midnight
    assert lines[3] == "| 北京 | 2 | 99.5 | 2024-01-02 |"
    assert sales.location.label == "sheet “销售”" and "data rows" not in sales.text
    assert notes.location.label == "sheet “说明”" and "| 销量 | 件数 |" in notes.text


def test_large_sheet_is_summarised_by_rows_with_column_figures() -> None:
    doc = read(make_xlsx(5_000), XLSX, "big.xlsx")
    sales = doc.sections[0]
    assert sales.location.label == "sheet “销售” rows 1–200 of 5,000"
    table = [line for line in sales.text.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 200  # header, rule, the first 200 rows
    assert "[5,000 data rows; the first 200 are shown above." in sales.text
    assert "- 销量: 5,000 numbers, min 1, max 5000, mean 2500.5, sum 12502500" in sales.text
    assert "- 城市: 5,000 text values, 4 distinct; most common: 上海 (1,500), 北京 (1,250)" in sales.text
    assert "- 日期: 5,000 dates from 2024-01-01 to 2024-12-31" in sales.text


def test_preview_rows_is_a_parameter() -> None:
    from bot.documents.sheets import read_xlsx

    doc = read_xlsx(make_xlsx(50), "s.xlsx", preview_rows=10)
    assert doc.sections[0].location.label == "sheet “销售” rows 1–10 of 50"


# --- CSV --------------------------------------------------------------------------------------

CSV_TEXT = '城市,销量,备注\r\n上海,1200,"旗舰店, 含线上"\r\n北京,980,新店\r\n'


@pytest.mark.parametrize(
    "encoded",
    [
        CSV_TEXT.encode("utf-8"),
        b"\xef\xbb\xbf" + CSV_TEXT.encode("utf-8"),  # Excel's "CSV UTF-8"
        CSV_TEXT.encode("gbk"),  # Excel's "CSV" on a Chinese Windows
        CSV_TEXT.encode("gb18030"),
    ],
    ids=["utf-8", "utf-8-sig", "gbk", "gb18030"],
)
def test_csv_in_the_encodings_chinese_excel_writes(encoded: bytes) -> None:
    doc = read(encoded, "text/csv", "门店.csv")
    assert (doc.kind, doc.unit) == ("csv", "sheet")
    assert doc.sections[0].text.splitlines() == [
        "| 城市 | 销量 | 备注 |",
        "| --- | --- | --- |",
        "| 上海 | 1200 | 旗舰店, 含线上 |",
        "| 北京 | 980 | 新店 |",
    ]
    assert doc.notes == []


def test_semicolon_csv_and_tsv_and_numbers_in_text() -> None:
    rows = "产品;价格\n" + "".join(f'款式{i};"1,{i:03d}.5"\n' for i in range(300))
    doc = read(rows.encode(), "", "prices.csv")
    text = doc.sections[0].text
    assert text.startswith("| 产品 | 价格 |") and "| 款式0 | 1,000.5 |" in text
    assert "- 价格: 300 numbers, min 1000.5, max 1299.5" in text  # "1,234.5" counted as a number
    tsv = read(b"a\tb\n1\t2\n", "", "t.tsv")
    assert tsv.sections[0].text.splitlines()[2] == "| 1 | 2 |"


# --- EPUB -------------------------------------------------------------------------------------

CHAPTER = """<?xml version="1.0" encoding="utf-8"?>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>{title}</title><style>p {{color: red}}</style></head>
<body><h1>{title}</h1><p>{body}</p><p>第二段&nbsp;内容。</p><script>alert(1)</script></body></html>"""


def make_epub(*, nav: bool = True, drm: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        z.writestr(
            "META-INF/container.xml",
            """<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles>
</container>""",
        )
        items = [("cover", "cover.xhtml"), ("c2", "text/ch2.xhtml"), ("c1", "text/ch1.xhtml")]
        manifest = "".join(f'<item id="{i}" href="{h}" media-type="application/xhtml+xml"/>' for i, h in items)
        manifest += '<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>'
        if nav:
            manifest += '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
        # Spine order is the reading order (c1 before c2), not the manifest's.
        z.writestr(
            "OEBPS/content.opf",
            f"""<?xml version="1.0"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0"><metadata/><manifest>{manifest}</manifest>
<spine toc="ncx"><itemref idref="cover"/><itemref idref="c1"/><itemref idref="c2"/></spine></package>""",
        )
        z.writestr("OEBPS/cover.xhtml", '<html><body><img src="cover.jpg"/></body></html>')
        z.writestr("OEBPS/text/ch1.xhtml", CHAPTER.format(title="第一章 起源", body="很久以前，\n  有一座山。"))
        z.writestr("OEBPS/text/ch2.xhtml", CHAPTER.format(title="第二章 远行", body="他走了 3 天。"))
        z.writestr(
            "OEBPS/nav.xhtml",
            """<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">
<body><nav epub:type="toc"><ol><li><a href="text/ch1.xhtml">起源（目录）</a></li>
<li><a href="text/ch2.xhtml#start">远行（目录）</a></li></ol></nav></body></html>""",
        )
        z.writestr(
            "OEBPS/toc.ncx",
            """<?xml version="1.0"?>
<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1"><navMap>
<navPoint id="a"><navLabel><text>起源（NCX）</text></navLabel><content src="text/ch1.xhtml"/></navPoint>
<navPoint id="b"><navLabel><text>远行（NCX）</text></navLabel><content src="text/ch2.xhtml"/></navPoint>
</navMap></ncx>""",
        )
        if drm:
            z.writestr(
                "META-INF/encryption.xml",
                """<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container"
 xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>
<enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
<enc:CipherData><enc:CipherReference URI="OEBPS/text/ch1.xhtml"/></enc:CipherData></enc:EncryptedData></encryption>""",
            )
    return buffer.getvalue()


def test_epub_chapters_in_spine_order_titled_from_the_nav() -> None:
    doc = read(make_epub(), "application/epub+zip", "山.epub")
    assert (doc.kind, doc.unit, doc.pages) == ("epub", "chapter", 2)  # the image-only cover has no text
    first, second = doc.sections
    assert first.location == Location("chapter", 1, "起源（目录）")
    assert second.location == Location("chapter", 2, "远行（目录）")  # a fragment link names its file
    assert first.text.splitlines() == ["# 第一章 起源", "", "很久以前，有一座山。", "", "第二段 内容。"]
    assert "alert" not in first.text and "color" not in first.text


def test_epub2_titles_come_from_the_ncx() -> None:
    doc = read(make_epub(nav=False), "", "山.epub")
    assert [s.location.title for s in doc.sections] == ["起源（NCX）", "远行（NCX）"]


# --- Word and text: sections for citing ---------------------------------------------------------


def test_docx_sections_start_at_headings() -> None:
    document = docx.Document()
    document.add_paragraph("前言：本报告面向市场团队。")
    document.add_heading("第一章 市场", level=1)
    document.add_paragraph("市场规模继续扩大。")
    document.add_heading("1.1 线上", level=2)
    document.add_paragraph("线上占比六成。")
    buffer = io.BytesIO()
    document.save(buffer)
    doc = read(buffer.getvalue(), "", "r.docx")
    assert [s.location.label for s in doc.sections] == [
        "paragraph 1",
        "section 2 “第一章 市场”",
        "section 3 “1.1 线上”",
    ]
    assert doc.total == 5 and doc.sections[2].text == "## 1.1 线上\n\n线上占比六成。"


def test_text_files_are_cut_into_runs_of_lines_and_at_markdown_headings() -> None:
    long = "\n".join(f"第{i}行：" + "内容" * 40 for i in range(1, 301))
    doc = read(long.encode(), "text/plain", "log.txt")
    assert doc.sections[0].location.label.startswith("lines 1–") and len(doc.sections) > 3
    assert sum(s.blocks for s in doc.sections) == 300
    md = read("# 总览\n文字\n## 细节\n更多".encode(), "", "notes.md")
    assert [s.location.label for s in md.sections] == ["section 1 “总览”", "section 2 “细节”"]


def test_full_width_and_radicals_are_normalised_in_every_format() -> None:
    data = make_xlsx(0)
    book = Workbook()
    book.active.append(["⼀只好杯⼦", "ＡＢＣ１２３，"])
    buffer = io.BytesIO()
    book.save(buffer)
    assert "| 一只好杯子 | ABC123， |" in read(buffer.getvalue(), XLSX, "n.xlsx").sections[0].text
    assert read(data, XLSX, "e.xlsx").sections[0].location.of == 0


async def test_to_parts_reads_the_new_formats() -> None:
    settings = SimpleNamespace(context_tokens=200_000, max_tokens=4096, vision=True, max_images=4)
    parts, notices = await to_parts(Attachment(make_pptx(), PPTX, "deck.pptx"), settings)
    assert notices == [] and [p.kind for p in parts] == ["document"]
    assert parts[0].data["kind"] == "pptx" and parts[0].data["unit"] == "slide" and parts[0].data["total"] == 3
    assert "--- slide 1 “新品定价策略” ---" in parts[0].text


def test_a_budget_cut_reads_only_the_pages_it_needs() -> None:
    from tests.test_documents import make_pdf

    data = make_pdf([f"Page {i} " + "market figures " * 30 for i in range(1, 301)])
    whole = read(data, "application/pdf", "long.pdf")
    assert len(whole.sections) == 300
    early = read(data, "application/pdf", "long.pdf", stop_tokens=2_000)
    assert early.total == 300 and 10 < len(early.sections) < 40  # the rest is never parsed
    text = extract_text(data, "application/pdf", "long.pdf", 2_000)
    assert text.read < len(early.sections) and text.total == 300
    assert text.text.startswith(f"[“long.pdf” is long: I read pages 1–{text.read} of 300")
