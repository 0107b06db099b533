"""Issue 21: PDF pages without a text layer (scans) found, rendered within the gateway's image
limits, shown to the model, and transcribed through its vision by the real gateway client
against the fake gateway (tests/fakes/gateway.py), a few pages per request, with progress."""

from __future__ import annotations

import base64
import io
import re
from types import SimpleNamespace

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFont
from pypdf import PdfReader, PdfWriter

from bot.config import Settings
from bot.documents import DocumentUnreadable, extract_text, read, to_parts
from bot.documents.pdf import render_pages
from bot.documents.vision import split_pages, transcribe_pages
from bot.gateway.client import GatewayClient
from bot.images import MAX_BYTES, MAX_SIDE
from bot.platform.messages import Attachment
from tests.conftest import FAST
from tests.fakes.gateway import Answer, FakeGateway
from tests.test_documents import make_pdf

NOTO_SANS = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
LINES = ["第{n}页 扫描件", "二〇二四年防晒市场", "用户调研：六成每天使用", "建议定价一百零九元"]


def scan_image(number: int) -> Image.Image:
    """An A4 page at 150 dpi with CJK text, as a scanner would give it."""
    page = Image.new("L", (1240, 1754), 255)
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(NOTO_SANS, 44, index=2)  # the SC face of the collection
    for row, line in enumerate(LINES):
        draw.text((120, 160 + row * 110), line.format(n=number), font=font, fill=0)
    return page


def scanned_pdf(text_pages: list[str], scans: int) -> bytes:
    """Text pages first (a real text layer), then ``scans`` image-only pages."""
    images = [scan_image(len(text_pages) + i + 1).convert("RGB") for i in range(scans)]
    buffer = io.BytesIO()
    images[0].save(buffer, "PDF", save_all=True, append_images=images[1:], resolution=150)
    writer = PdfWriter()
    for part in ([make_pdf(text_pages)] if text_pages else []) + [buffer.getvalue()]:
        for page in PdfReader(io.BytesIO(part)).pages:
            writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def likeness(rendered: bytes, number: int) -> float:
    """Mean absolute grey difference (0–255) between a rendered page and its source scan."""
    size = (310, 438)
    a = Image.open(io.BytesIO(rendered)).convert("L").resize(size)
    b = scan_image(number).resize(size)
    histogram = ImageChops.difference(a, b).histogram()
    return sum(i * n for i, n in enumerate(histogram)) / (size[0] * size[1])


@pytest.fixture(scope="module")
def pdf() -> bytes:
    return scanned_pdf(["Executive summary: the market grew 23 percent this year, led by sprays."], 3)


def test_pages_without_a_text_layer_are_found(pdf: bytes) -> None:
    doc = read(pdf, "application/pdf", "report.pdf")
    assert doc.pages == 4 and doc.scanned == [2, 3, 4]
    assert doc.sections[0].source == "text" and "market grew 23 percent" in doc.sections[0].text
    assert [s.source for s in doc.sections[1:]] == ["none"] * 3 and not any(s.text for s in doc.sections[1:])


def test_scanned_pages_render_legibly_within_the_gateway_limits(pdf: bytes) -> None:
    images = list(render_pages(pdf, [2, 4, 9], "report.pdf"))  # page 9 does not exist
    assert [image.page for image in images] == [2, 4]
    for image in images:
        assert image.mime == "image/jpeg" and len(image.data) <= MAX_BYTES
        assert max(image.width, image.height) == MAX_SIDE  # A4 at ~175 dpi: 9 pt CJK stays legible
        with Image.open(io.BytesIO(image.data)) as opened:
            assert opened.format == "JPEG" and opened.size == (image.width, image.height)
        assert likeness(image.data, image.page) < 6  # the page's own text, not a blank or another page
    assert likeness(images[0].data, 4) > likeness(images[0].data, 2)


async def test_to_parts_shows_scanned_pages_to_the_model_as_images(pdf: bytes) -> None:
    settings = SimpleNamespace(context_tokens=200_000, max_tokens=4096, vision=True, max_images=2)
    parts, notices = await to_parts(Attachment(pdf, "application/pdf", "report.pdf"), settings)
    assert [p.kind for p in parts] == ["document", "image", "image"]
    assert [p.data["page"] for p in parts[1:]] == [2, 3] and parts[1].mime == "image/jpeg"
    assert parts[0].data["scanned"] == [2, 3, 4] and parts[0].data["imaged"] == [2, 3]
    assert "--- page 2: scanned, shown as image 1 ---" in parts[0].text
    assert "--- page 4: scanned, no text layer (not read) ---" in parts[0].text
    assert notices == [
        "Pages 2–4 of “report.pdf” have no text layer (scanned); I'm reading pages 2–3 as images, page 4 was not read."
    ]

    off = SimpleNamespace(context_tokens=200_000, max_tokens=4096, vision=False, max_images=4)
    parts, notices = await to_parts(Attachment(pdf, "application/pdf", "report.pdf"), off)
    assert [p.kind for p in parts] == ["document"]
    assert notices == [
        "Pages 2–4 of “report.pdf” are scanned images without a text layer, and image input is "
        "turned off, so I could not read them."
    ]


def test_a_wholly_scanned_pdf_without_vision_says_so() -> None:
    data = scanned_pdf([], 2)
    with pytest.raises(DocumentUnreadable, match="no text layer .* image input is turned off"):
        extract_text(data, "application/pdf", "scan.pdf", 100_000, vision=False)
    text = extract_text(data, "application/pdf", "scan.pdf", 100_000, page_images=4)
    assert [image.page for image in text.images] == [1, 2]


# --- transcription through the model's vision ---------------------------------------------------


def pages_asked(body: dict) -> list[int]:
    blocks = body["messages"][-1]["content"]
    return [
        int(m.group(1)) for b in blocks if b["type"] == "text" for m in [re.fullmatch(r"page (\d+):", b["text"])] if m
    ]


def transcribing(body: dict) -> Answer:
    """A model that follows the instructions: one marked transcription per page asked."""
    return Answer(
        text="\n".join(f"=== page {n} ===\n第{n}页 扫描件\n建议定价一百零九元" for n in pages_asked(body)),
        reasoning="Transcribe each page.",
    )


def client(gw: FakeGateway, **overrides: object) -> GatewayClient:
    settings = Settings(
        _env_file=None, BYTESPIKE_API_KEY=gw.api_key, BYTESPIKE_BASE_URL=gw.base_url, **FAST, **overrides
    )  # type: ignore[arg-type]
    return GatewayClient(settings)


async def test_scanned_pages_are_transcribed_a_few_at_a_time_with_progress(pdf: bytes, fake_gateway) -> None:
    fake_gateway.default = transcribing
    seen: list[tuple[int, int]] = []

    async def progress(done: int, total: int) -> None:
        seen.append((done, total))

    doc = read(pdf, "application/pdf", "report.pdf")
    async with client(fake_gateway) as gateway:
        result = await transcribe_pages(
            gateway, pdf, doc.scanned, filename="report.pdf", batch_pages=2, progress=progress
        )
    assert result.read == [2, 3, 4] and result.failed == [] and result.skipped == []
    assert result.texts[3] == "第3页 扫描件\n建议定价一百零九元"
    assert seen == [(2, 3), (3, 3)] and result.requests == 2
    assert [pages_asked(r.body) for r in fake_gateway.requests] == [[2, 3], [4]]
    for request in fake_gateway.requests:
        blocks = request.body["messages"][-1]["content"]
        urls = [b["image_url"]["url"] for b in blocks if b["type"] == "image_url"]
        assert urls and all(u.startswith("data:image/jpeg;base64,") for u in urls)
        for url, page in zip(urls, pages_asked(request.body)):
            assert likeness(base64.b64decode(url.split(",", 1)[1]), page) < 6
        assert request.body["max_tokens"] <= 16384 and "transcribe" in request.body["messages"][0]["content"]
    assert result.prompt_tokens > 0 and result.completion_tokens > 0

    doc.fill(result.texts)
    assert doc.scanned == [] and doc.section("page", 4).source == "vision"
    assert result.notices() == [
        "pages 2–4 of “report.pdf” have no text layer (scanned); I read them from their "
        "images, so names and figures there may contain recognition errors"
    ]


async def test_page_cap_and_a_page_the_model_skipped(pdf: bytes, fake_gateway) -> None:
    fake_gateway.script(
        Answer(text="=== page 2 ===\n第2页 扫描件"),  # page 3 left out of the batch's answer …
        Answer(text="第3页 扫描件"),
    )  # … so it is asked alone (no marker needed)
    async with client(fake_gateway) as gateway:
        result = await transcribe_pages(gateway, pdf, [2, 3, 4], filename="report.pdf", batch_pages=2, page_cap=2)
    assert result.texts == {2: "第2页 扫描件", 3: "第3页 扫描件"} and result.skipped == [4]
    assert [pages_asked(r.body) for r in fake_gateway.requests] == [[2, 3], [3]]
    assert (
        "scanned pages 4 of “report.pdf” were not read (the limit is 2 scanned pages per document)" in result.notices()
    )


async def test_a_refused_batch_fails_its_pages_and_the_rest_go_on(pdf: bytes, fake_gateway) -> None:
    fake_gateway.script(Answer(status=400, error_body={"error": {"message": "bad image"}}))
    fake_gateway.default = transcribing
    async with client(fake_gateway) as gateway:
        result = await transcribe_pages(gateway, pdf, [2, 3, 4], filename="report.pdf", batch_pages=1)
    assert result.failed == [2] and result.read == [3, 4] and result.error
    assert any(n.startswith("scanned pages 2 of “report.pdf” could not be read") for n in result.notices())


async def test_without_vision_nothing_is_sent(pdf: bytes, fake_gateway) -> None:
    async with client(fake_gateway, BOT_VISION=False) as gateway:
        result = await transcribe_pages(gateway, pdf, [2, 3, 4], filename="report.pdf", batch_pages=1)
    assert fake_gateway.requests == [] and result.texts == {} and result.failed == [2, 3, 4]
    assert "image input" in result.error


def test_split_pages_reads_the_markers_the_model_writes() -> None:
    answer = "=== page 7 ===\n甲\n\n### 第 8 页\n乙\n=== Page 9 ===\n丙"
    assert split_pages(answer, [7, 8, 9]) == {7: "甲", 8: "乙", 9: "丙"}
    assert split_pages("=== page 3 ===\nx", [7]) == {}  # not a page that was asked


async def test_a_scanned_page_reaches_the_model_through_the_service(service, fake_gateway, pdf: bytes) -> None:
    """The core's call site (``documents.to_parts``) unchanged: the document part and the
    page images are stored with the message, and the next prompt shows the model both."""
    from bot.platform.messages import Author, ConversationKey, IncomingMessage
    from tests.surfaces import RecordingSurface

    fake_gateway.script(Answer(text="第2页写的是扫描件。", reasoning="look at the page"))
    message = IncomingMessage(
        key=ConversationKey("console", "local", "alice"),
        author=Author("alice", "Alice"),
        text="第 2 页写了什么？",
        message_id="m-scan",
        attachments=[Attachment(pdf, "application/pdf", "report.pdf")],
    )
    surface = RecordingSurface()
    await service.handle(message, surface)
    user = fake_gateway.last.body["messages"][-1]
    blocks = user["content"]
    text = " ".join(b["text"] for b in blocks if b["type"] == "text")
    assert "第 2 页写了什么？" in text and "--- page 2: scanned, shown as image 1 ---" in text
    images = [b["image_url"]["url"] for b in blocks if b["type"] == "image_url"]
    assert len(images) == 3 and all(u.startswith("data:image/jpeg;base64,") for u in images)
    assert likeness(base64.b64decode(images[0].split(",", 1)[1]), 2) < 6
    assert surface.texts[-1] == "第2页写的是扫描件。"


async def test_pdfs_read_and_rendered_in_parallel_threads(pdf: bytes) -> None:
    """PDFium is not thread-safe even across documents: every call holds one lock, so
    documents read in worker threads at once (several chats) all come out whole."""
    import asyncio

    from bot.documents import read_document

    texts = [make_pdf([f"document {n} page {p}" for p in range(1, 40)]) for n in range(4)]
    results = await asyncio.gather(
        *(read_document(data, "application/pdf", f"{n}.pdf", 100_000) for n, data in enumerate(texts)),
        *(read_document(pdf, "application/pdf", "scan.pdf", 100_000, page_images=3) for _ in range(3)),
    )
    for n, result in enumerate(results[:4]):
        assert result.read == 39 and f"document {n} page 39" in result.text
    for result in results[4:]:
        assert [image.page for image in result.images] == [2, 3, 4]
