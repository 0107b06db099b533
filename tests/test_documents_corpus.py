"""Issue 21: CJK text read right from PDFs of the producers users send, measured against the
source text, and the normaliser's promise (compatibility forms fixed, the author's
characters untouched).

The PDFs are made here from known text, no downloads:
- Chromium's print-to-PDF of an HTML page set in Noto Sans CJK SC and in Noto Serif CJK SC
  (the issue's case: Skia writes CJK glyphs as Type 3 fonts whose ToUnicode maps shared
  glyphs to Kangxi radicals, plus ``/ActualText`` spans with the real characters);
- LibreOffice Writer's PDF export of a .docx written with python-docx, in Noto Serif CJK
  (CFF, embedded as CIDFontType0);
- "Word-like": what Word does with Chinese text set in a TrueType font (SimSun, Microsoft
  YaHei, DengXian), embedding TrueType subsets with a ToUnicode map. Two producers do that
  here with WenQuanYi Micro Hei (TrueType): LibreOffice (CIDFontType2, Identity-H, as Word)
  and reportlab (its own subsetter: several 256-glyph simple TrueType subsets).

Each PDF's text, as ``bot.documents.read`` returns it, is aligned with the source character
by character over non-whitespace (difflib ratio): it must be ≥ 99.5 %. The figure before
normalisation, and pypdf's for comparison, are printed (``pytest -s``). The producers' binaries
and fonts are installed by .ci/run: a missing one fails the test, it is not skipped.
"""

from __future__ import annotations

import difflib
import html
import io
import shutil
import subprocess
import time
import unicodedata
from pathlib import Path

import pytest

from bot.documents import read
from bot.documents.textnorm import compatibility_forms, normalise

CHROMIUM = "/usr/bin/chromium"
NOTO_SANS = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
WQY = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"

SOURCE = """夏季防晒市场年度报告
一只好杯子能陪你走过四季，用久了才知道它的好。
第一章 市场概况
二〇二四年，国内防晒品类的线上销售额同比增长了百分之二十三。消费者更关注清爽肤感、成分安全和性价比。
在小红书上，「通勤防晒」「户外暴晒」两个话题的讨论量最高；大学生和年轻白领是主要人群。
男性用户的占比从去年的百分之十一上升到百分之十七，身体防晒喷雾是增长最快的细分品类。
第二章 竞品分析
品牌甲的主打产品定价九十九元，品牌乙推出了大容量家庭装。我们的新品应该如何定价？
长期来看，门店与线上的价格差距正在缩小；见面会、试用装和会员日仍然是有效的手段。
直播间的折扣力度普遍在七五折左右，但复购率最高的反而是不打折的官方旗舰店。
第三章 用户调研
我们访问了一千二百名用户：六成的人每天都用防晒，四成的人只在出门旅行时使用。
最常见的抱怨是“搓泥”“闷痘”和“假白”，其次是味道太重、包装不方便携带。
她们希望产品既能防水防汗，又不需要专门的卸妆步骤；价格敏感度随年龄增长而降低。
第四章 建议
一、保持核心单品的价格稳定。二、用小规格试用装降低尝鲜门槛。三、在高温季节加大投放。
风险：原料成本上涨、同质化竞争、渠道费用增加。结论：稳中求进，以口碑驱动增长！
附录 规格与说明
①清爽型 SPF50+ PA++++，容量 50ml；②滋润型，容量 30ml（限量）；③家庭装 200ml——适合全家使用……
商标：SunGuard™，活性成分浓度 ½ 以下；适用温度 5℃～35℃，面积约 2m²。
"""
# What plain NFKC would change in SOURCE although the author meant it (and ``normalise`` keeps).
AUTHORS_CHARACTERS = "，。！？：；（）「」“”、……——①②③™½℃～²"


def nonspace(text: str) -> str:
    return "".join(c for c in text if not c.isspace())


def agreement(extracted: str) -> float:
    return difflib.SequenceMatcher(None, nonspace(SOURCE), nonspace(extracted), autojunk=False).ratio()


def differences(extracted: str) -> list[tuple[str, str]]:
    a, b = nonspace(SOURCE), nonspace(extracted)
    ops = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    return [(a[i1:i2], b[j1:j2]) for op, i1, i2, j1, j2 in ops if op != "equal"]


# --- producers ----------------------------------------------------------------------------


def chromium_pdf(tmp: Path, family: str) -> bytes:
    assert Path(CHROMIUM).exists(), "install Debian's chromium (.ci/run does)"
    body = "".join(f"<p>{html.escape(line)}</p>" for line in SOURCE.strip().split("\n"))
    page = tmp / f"{family.replace(' ', '_')}.html"
    page.write_text(
        f"<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><style>body{{font-family:"
        f"'{family}';font-size:15px;line-height:1.8}}</style></head><body>{body}</body></html>"
    )
    out = page.with_suffix(".pdf")
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--user-data-dir={tmp / 'chromium-profile'}",
            f"--print-to-pdf={out}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out.read_bytes()


def word_docx(font: str) -> bytes:
    import docx
    from docx.oxml.ns import qn

    document = docx.Document()
    for line in SOURCE.strip().split("\n"):
        run = document.add_paragraph().add_run(line)
        run.font.name = font
        run._element.rPr.rFonts.set(qn("w:eastAsia"), font)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def libreoffice_pdfs(tmp: Path, fonts: dict[str, str]) -> dict[str, bytes]:
    """One LibreOffice run converting one .docx per font (a start costs seconds)."""
    binary = shutil.which("libreoffice") or shutil.which("soffice")
    assert binary, "install libreoffice-writer-nogui (.ci/run does)"
    sources = []
    for key, font in fonts.items():
        path = tmp / f"lo_{key}.docx"
        path.write_bytes(word_docx(font))
        sources.append(str(path))
    subprocess.run(
        [
            binary,
            f"-env:UserInstallation={(tmp / 'lo-profile').as_uri()}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp),
            *sources,
        ],
        check=True,
        capture_output=True,
        timeout=240,
    )
    return {key: (tmp / f"lo_{key}.pdf").read_bytes() for key in fonts}


def reportlab_pdf() -> bytes:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    assert Path(WQY).exists(), "install fonts-wqy-microhei (.ci/run does)"
    pdfmetrics.registerFont(TTFont("WQYMicroHei", WQY, subfontIndex=0))
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    y = 800
    for line in SOURCE.strip().split("\n"):
        while line:  # wrap by width, as a word processor would
            cut = len(line)
            while pdfmetrics.stringWidth(line[:cut], "WQYMicroHei", 10.5) > 500:
                cut -= 1
            page.setFont("WQYMicroHei", 10.5)
            page.drawString(48, y, line[:cut])
            line, y = line[cut:], y - 18
            if y < 60:
                page.showPage()
                y = 800
    page.save()
    return buffer.getvalue()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    assert Path(NOTO_SANS).exists(), "install fonts-noto-cjk (.ci/run does)"
    tmp = tmp_path_factory.mktemp("cjk-corpus")
    made = {
        "chromium, Noto Sans CJK": chromium_pdf(tmp, "Noto Sans CJK SC"),
        "chromium, Noto Serif CJK": chromium_pdf(tmp, "Noto Serif CJK SC"),
    }
    office = libreoffice_pdfs(tmp, {"serif": "Noto Serif CJK SC", "truetype": "WenQuanYi Micro Hei"})
    made["libreoffice, Noto Serif CJK"] = office["serif"]
    made["word-like: libreoffice, TrueType"] = office["truetype"]
    made["word-like: reportlab, TrueType subsets"] = reportlab_pdf()
    return made


def pypdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def pdfium_raw_text(data: bytes) -> str:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(data)
    try:
        out = []
        for index in range(len(doc)):
            page = doc[index]
            textpage = page.get_textpage()
            out.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return "\n".join(out)
    finally:
        doc.close()


# --- the corpus -----------------------------------------------------------------------------


def test_every_producer_reads_back_at_least_99_5_percent(corpus: dict[str, bytes]) -> None:
    rows = []
    failures = []
    for producer, data in corpus.items():
        started = time.perf_counter()
        doc = read(data, "application/pdf", f"{producer}.pdf")
        seconds = time.perf_counter() - started
        ours = "\n".join(s.text for s in doc.sections)
        raw = pdfium_raw_text(data)
        legacy = pypdf_text(data)
        figures = (
            agreement(raw),
            agreement(ours),
            agreement(legacy),
            agreement(normalise(legacy)),
            agreement(unicodedata.normalize("NFKC", raw)),
        )
        rows.append(
            f"{producer:40} pdfium raw {figures[0]:.4f} normalised {figures[1]:.4f} | pypdf raw "
            f"{figures[2]:.4f} normalised {figures[3]:.4f} | plain NFKC {figures[4]:.4f} | "
            f"{seconds * 1000:.0f} ms"
        )
        if figures[1] < 0.995:
            failures.append(f"{producer}: {figures[1]:.4f} {differences(ours)[:10]}")
        assert doc.kind == "pdf" and doc.pages >= 1 and not doc.scanned
        assert "一只好杯子能陪你走过四季" in nonspace(ours), producer
    print("\n" + "\n".join(rows))
    assert not failures, failures


def test_chromium_pdfs_show_the_issue_and_normalising_fixes_it(corpus: dict[str, bytes]) -> None:
    """pypdf, which ignores /ActualText, gives the issue's Kangxi radicals for Chromium's PDFs;
    the normaliser turns them back. What it must leave is a glyph two ordinary characters
    share (户 read as 戶, ～ as 〜): no normaliser can know, PDFium gets them from /ActualText."""
    legacy = pypdf_text(corpus["chromium, Noto Sans CJK"])
    assert "⼀只好杯⼦" in legacy and compatibility_forms(legacy) > 20
    assert agreement(legacy) < 0.95
    fixed = normalise(legacy)
    assert "一只好杯子能陪你走过四季" in nonspace(fixed) and compatibility_forms(fixed) == 0
    assert agreement(fixed) >= 0.99
    assert set(differences(fixed)) <= {("户", "戶"), ("～", "〜")}


def test_plain_nfkc_would_change_what_the_author_wrote(corpus: dict[str, bytes]) -> None:
    text = "\n".join(s.text for s in read(corpus["chromium, Noto Sans CJK"], "", "c.pdf").sections)
    for char in AUTHORS_CHARACTERS:
        assert char in text, char  # extracted as written …
    assert agreement(unicodedata.normalize("NFKC", text)) < 0.95  # … and NFKC would rewrite them


# --- the normaliser ---------------------------------------------------------------------------


def test_compatibility_forms_become_unified_ideographs_and_ascii() -> None:
    assert normalise("⼀只好杯⼦能陪你⾛过四季，⽤久了") == "一只好杯子能陪你走过四季，用久了"
    assert normalise("⻅⾯会、⻓期、⻔店、⻛险") == "见面会、长期、门店、风险"  # radicals supplement (not NFKC)
    assert normalise("\uf900\ufa10\U0002f800") == "\u8c48\u585a\u4e3d"  # compatibility ideographs
    assert normalise("ＳＰＦ５０＋，ｉＰｈｏｎｅ１５") == "SPF50＋，iPhone15"  # letters/digits only
    assert normalise("a\r\nb\rc\x00\ufeffd\x07") == "a\nb\ncd"


def test_what_the_author_meant_is_left_alone() -> None:
    meant = (
        "，。！？：；（）「」『』【】《》〈〉、…—～·　＋－＝％＃＆＠"  # full-width punctuation, ideographic space
        "①②⑩⑴㈠™®©℃℉°²³¹½¼¾㎡㎏№ｶﾞﬁ∶⁄"  # circled, symbols, super/subscripts, fractions, units, kana, ligature
        "一二三四五六七八九十龟母见长门风户戶"
    )  # ideographs, including those radicals look like
    assert normalise(meant) == meant
    changed_by_nfkc = sum(1 for c in meant if unicodedata.normalize("NFKC", c) != c)
    assert changed_by_nfkc >= 35  # what plain NFKC would have rewritten here


def test_every_kangxi_radical_maps_to_a_unified_ideograph() -> None:
    radicals = "".join(chr(cp) for cp in range(0x2F00, 0x2FD6))
    fixed = normalise(radicals)
    assert len(fixed) == 214 and all(unicodedata.name(c).startswith("CJK UNIFIED IDEOGRAPH") for c in fixed)
    supplement = "".join(chr(cp) for cp in range(0x2E80, 0x2EF4) if unicodedata.name(chr(cp), ""))
    assert sum(1 for a, b in zip(supplement, normalise(supplement)) if a != b) == 114
