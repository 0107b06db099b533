"""Reading a 1,000-page Chinese PDF: wall time and peak memory of ``bot.documents``.

Builds a text PDF of ``--pages`` pages of Chinese report text (Chromium's print-to-PDF with
Noto Sans CJK, the issue's producer, or reportlab with an embedded TrueType subset), then
reads it in fresh subprocesses so each figure is that step's own:

- ``read``: every page's text through PDFium, normalised, into a ``Document``;
- ``extract_text``: the same plus the cut to one prompt part within the default budget;
- ``read_100``: ``read`` of the first 100 pages, the per-page figure to compare with:
- ``pypdf_100``: pypdf's ``extract_text`` of the first 100 pages (the previous reader; on
  Chromium's Type 3 fonts it is too slow to run over all 1,000);
- ``in_parts``: the whole report answered through the bot (issue 21): the message stored, the
  turn that reads it in parts against the fake gateway (a model that answers at once, so the
  figure is the bot's own time: reading, planning, the calls, storing each part's notes),
  with the default settings; parts, gateway calls, the tokens the fake gateway reported, and
  wall time from the message to the stored answer.

Peak RSS is the process's ``ru_maxrss`` after the step (Python, the imports and the PDF's bytes
included); growth is that minus the peak before the step (0 when the step never rose above
what importing had already reached).

    python -m bench.documents [--pages 1000] [--producer chromium|reportlab] [--keep DIR]
"""

from __future__ import annotations

import argparse
import html
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
WQY = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
SENTENCES = [
    "二〇二四年国内防晒品类线上销售额同比增长百分之二十三，清爽肤感和成分安全最受关注。",
    "在小红书上，「通勤防晒」与「户外暴晒」两个话题的讨论量最高，大学生和年轻白领是主要人群。",
    "品牌甲的主打产品定价九十九元，品牌乙推出了大容量家庭装，直播间折扣普遍在七五折左右。",
    "门店与线上的价格差距正在缩小；见面会、试用装和会员日仍然是有效的拉新手段。",
    "用户最常见的抱怨是搓泥、闷痘和假白，其次是味道太重、包装不方便携带。",
    "建议保持核心单品价格稳定，用小规格试用装降低尝鲜门槛，并在高温季节加大投放。",
    "风险包括原料成本上涨、同质化竞争和渠道费用增加，结论是稳中求进、以口碑驱动增长。",
]
LINES_PER_PAGE = 24

CHILD = r"""
import json, resource, sys, time
step, path = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
if step == "pypdf_100":
    import io
    from pypdf import PdfReader
elif step == "in_parts":
    import asyncio
    from bench.documents import answer_in_parts
else:
    from bot.documents import extract_text, read
    from bot.core.tokens import estimate_tokens
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
if step == "read":
    doc = read(data, "application/pdf", "bench.pdf")
    out = {"pages": doc.pages, "chars": doc.text_chars, "tokens": sum(estimate_tokens(s.text) for s in doc.sections)}
elif step == "read_100":
    import bot.documents.pdf as pdf
    pdf.MAX_PAGES = 100
    doc = read(data, "application/pdf", "bench.pdf")
    out = {"pages": len(doc.sections), "chars": doc.text_chars}
elif step == "in_parts":
    out = asyncio.run(answer_in_parts(data))
elif step == "extract_text":
    text = extract_text(data, "application/pdf", "bench.pdf", int((200_000 - 4096) * 0.6))
    out = {"read": text.read, "total": text.total, "tokens": text.tokens}
else:
    texts = [page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages[:100]]
    out = {"pages": len(texts), "chars": sum(len(t) for t in texts),
           "kangxi": sum(1 for t in texts for c in t if "\u2f00" <= c <= "\u2fdf")}
out.setdefault("seconds", round(time.perf_counter() - started, 2))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out["peak_rss_mb"] = round(after / 1024, 1)
out["growth_mb"] = round((after - before) / 1024, 1)
print(json.dumps(out, ensure_ascii=False))
"""


def page_lines(number: int) -> list[str]:
    return [f"第 {number} 页 · " + SENTENCES[(number + i) % len(SENTENCES)] for i in range(LINES_PER_PAGE)]


def chromium_pdf(pages: int, target: Path) -> None:
    body = "".join(
        "<section>" + "".join(f"<p>{html.escape(line)}</p>" for line in page_lines(n)) + "</section>"
        for n in range(1, pages + 1)
    )
    page = target.with_suffix(".html")
    page.write_text(
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><style>"
        "body{font-family:'Noto Sans CJK SC';font-size:13px;margin:0}p{margin:0 0 4px}"
        "section{page-break-after:always}</style></head><body>" + body + "</body></html>"
    )
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--user-data-dir={target.parent / 'chromium-profile'}",
            f"--print-to-pdf={target}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=1800,
    )


def reportlab_pdf(pages: int, target: Path, *, chapter_pages: int = 0) -> None:
    """``pages`` pages of ``page_lines``; with ``chapter_pages``, a bookmark "第 N 章" every so
    many pages (the outline a report exported from Word or LibreOffice has)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(TTFont("WQY", WQY, subfontIndex=0))
    sheet = canvas.Canvas(str(target))
    for number in range(1, pages + 1):
        if chapter_pages and (number - 1) % chapter_pages == 0:
            chapter = (number - 1) // chapter_pages + 1
            sheet.bookmarkPage(f"c{chapter}")
            sheet.addOutlineEntry(f"第 {chapter} 章", f"c{chapter}", level=0)
        sheet.setFont("WQY", 10)
        for row, line in enumerate(page_lines(number)):
            sheet.drawString(40, 800 - row * 30, line)
        sheet.showPage()
    sheet.save()


async def answer_in_parts(data: bytes) -> dict:
    """One question about the document, answered in parts through the service (SQLite, the
    fake gateway); returns the figures of that turn."""
    from sqlalchemy import func, select

    from bot.config import Settings
    from bot.platform.messages import Attachment, Author, ConversationKey, IncomingMessage
    from bot.process.runtime import build_runtime
    from bot.store.models import DocumentJob, DocumentResult, GatewayCall
    from tests.fakes.doc_reader import DocumentModel
    from tests.fakes.gateway import FakeGateway
    from tests.surfaces import RecordingSurface

    with tempfile.TemporaryDirectory() as tmp:
        async with FakeGateway(record=False) as gateway:
            gateway.default = DocumentModel()
            settings = Settings(
                _env_file=None,
                BYTESPIKE_API_KEY=gateway.api_key,  # type: ignore[call-arg]
                BYTESPIKE_BASE_URL=gateway.base_url,
                DATABASE_URL=f"sqlite:///{tmp}/bench.db",
                BOT_DOC_CONFIRM_ABOVE="",
            )
            runtime = await build_runtime(settings)
            try:
                message = IncomingMessage(
                    ConversationKey("console", "local", "bench"),
                    Author("analyst", "Analyst"),
                    "这份报告对我们的新品定价有什么启示？",
                    message_id="bench",
                    attachments=[Attachment(data, "application/pdf", "report.pdf")],
                )
                surface = RecordingSurface()
                started = time.perf_counter()
                await runtime.service.handle(message, surface)
                seconds = time.perf_counter() - started
                async with runtime.db.read() as conn:
                    parts = (await conn.execute(select(func.count()).select_from(DocumentResult))).scalar_one()
                    estimated = (await conn.execute(select(DocumentJob.estimate_tokens))).scalar() or 0
                    calls, prompt, completion = (
                        await conn.execute(
                            select(
                                func.count(),
                                func.sum(GatewayCall.prompt_tokens),
                                func.sum(GatewayCall.completion_tokens),
                            )
                        )
                    ).one()
            finally:
                await runtime.close()
    assert surface.texts, "the question was answered"
    # Tokens: the bot's own (conservative) estimate, and what the fake gateway reported (it
    # counts 3 characters a token, so a CJK prompt reads low next to a real tokenizer).
    return {
        "parts": parts,
        "calls": calls,
        "estimated_tokens": estimated,
        "reported_prompt_tokens": int(prompt or 0),
        "reported_completion_tokens": int(completion or 0),
        "wall_s": round(seconds, 2),
    }


def measure(step: str, path: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, step, str(path)], cwd=ROOT, check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--producer", choices=["chromium", "reportlab"], default="chromium")
    parser.add_argument("--keep", type=Path, help="keep the PDF in this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"bench-{args.producer}-{args.pages}.pdf"
        started = time.perf_counter()
        (chromium_pdf if args.producer == "chromium" else reportlab_pdf)(args.pages, path)
        built = time.perf_counter() - started
        print(f"{args.producer}: {args.pages} pages, {path.stat().st_size / 1e6:.1f} MB, built in {built:.1f} s")
        for step in ("read", "extract_text", "read_100", "pypdf_100", "in_parts"):
            print(f"  {step:13} {json.dumps(measure(step, path), ensure_ascii=False)}")


if __name__ == "__main__":
    main()
