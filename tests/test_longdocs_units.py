"""Issue 21, the pure parts of reading in parts: where documents are cut, and which cited
locations make the Sources line."""

from __future__ import annotations

from bot.documents.document import Document, Location, Section
from bot.longdocs.citations import cited, sources_line
from bot.longdocs.plan import Plan, part_text, plan_parts, section_costs, span


def pages(count: int, chars: int = 1_000, outline: list[tuple[int, str]] | None = None) -> Document:
    sections = [Section(Location("page", n), f"第 {n} 页 " + "字" * chars) for n in range(1, count + 1)]
    return Document("report.pdf", "pdf", "page", sections, count, outline=outline or [])


def test_parts_are_whole_pages_balanced_and_within_the_size() -> None:
    doc = pages(1000)
    plan = plan_parts([doc], 60_000)
    sizes = [p.tokens for p in plan.parts]
    assert all(size <= 60_000 for size in sizes) and max(sizes) - min(sizes) <= 1_011, sizes
    assert [(p.first, p.last) for p in plan.parts][0][0] == 0 and plan.parts[-1].last == 999
    assert all(b.first == a.last + 1 for a, b in zip(plan.parts, plan.parts[1:])), "no page skipped or repeated"
    assert sum(sizes) == sum(section_costs(doc))
    assert span(doc, plan.parts[1]) == f"pages {plan.parts[1].first + 1}–{plan.parts[1].last + 1}"
    assert span(doc, plan.parts[1], "zh") == f"第 {plan.parts[1].first + 1}–{plan.parts[1].last + 1} 页"
    assert Plan.from_dict(plan.to_dict()) == plan and plan.fits([doc]) and not plan.fits([pages(10)])


def test_a_part_ends_where_a_bookmarked_chapter_begins() -> None:
    plain = plan_parts([pages(200)], 60_000)
    chapter = plain.parts[1].first + 1 - 8  # a chapter begins 8 pages before the first part would end
    shaped = plan_parts([pages(200, outline=[(1, "第一章"), (chapter, "第二章")])], 60_000)
    assert shaped.parts[1].first + 1 == chapter, "the second part starts with the chapter"
    far = plan_parts([pages(200, outline=[(1, "第一章"), (10, "第二章")])], 60_000)
    assert far.parts[0].last == plain.parts[0].last, "a chapter near the start of a part does not cut it short"


def test_a_section_longer_than_a_part_is_cut_at_paragraphs_into_pieces() -> None:
    body = "\n\n".join(f"第 {n} 段。" + "文" * 900 for n in range(1, 61))
    doc = Document("novel.epub", "epub", "chapter", [Section(Location("chapter", 1, "长夜"), body)], 1)
    plan = plan_parts([doc], 20_000)
    assert [(p.piece, p.pieces) for p in plan.parts] == [(n, 3) for n in (1, 2, 3)]
    texts = [part_text(doc, p) for p in plan.parts]
    assert texts[1].startswith("--- chapter 1 “长夜” (piece 2 of 3) ---\n第 ")
    joined = "".join(t.split("\n", 1)[1] for t in texts)
    assert joined.replace("\n", "") == body.replace("\n", ""), "every paragraph in exactly one piece"
    assert span(doc, plan.parts[2]) == "chapter 1 “长夜” (piece 3 of 3)"


def test_only_locations_the_documents_have_are_sources() -> None:
    report = pages(300)
    deck = Document(
        "deck.pptx",
        "pptx",
        "slide",
        [Section(Location("slide", n, "定价" if n == 4 else ""), "x") for n in range(1, 11)],
        10,
    )
    answer = (
        "价格带在 89–129 元 [page 12]，竞品 [pages 13–15]【第 57 页】；见 [deck.pptx, slide 4] 与 "
        "[report.pdf p. 3]。不存在的 [page 1,204]、[slide 40]，整本 [pages 1–300] 不算引用。"
    )
    found = cited(answer, [report, deck])
    assert (
        sources_line([report, deck], found, "zh")
        == "**来源：** 《report.pdf》第 3、12–15、57 页 · 《deck.pptx》幻灯片 4“定价”"
    )
    assert (
        sources_line([report, deck], found, "en")
        == "**Sources:** report.pdf — pages 3, 12–15, 57 · deck.pptx — slide 4 “定价”"
    )
    nothing = cited("no citations here", [report])
    assert sources_line([report], nothing, "en") == ""
    assert (
        sources_line([report], nothing, "en", fallback="report.pdf — pages 1–300, read in 6 parts")
        == "**Sources:** report.pdf — pages 1–300, read in 6 parts"
    )


def test_sheets_are_cited_by_name() -> None:
    book = Document(
        "sales.xlsx",
        "xlsx",
        "sheet",
        [Section(Location("sheet", 1, "销售", last=200, of=12_000), "x"), Section(Location("sheet", 2, "库存"), "y")],
        2,
    )
    found = cited("华东最高 [sheet “销售”]，库存见【工作表“库存”】，[sheet “利润”] 不存在。", [book])
    assert sources_line([book], found, "en") == "**Sources:** sales.xlsx — sheet “库存”; sheet “销售”"
