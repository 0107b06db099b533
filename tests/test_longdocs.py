"""Issue 21: documents past the window answered in parts, end to end in the core — the real
store and service, the real gateway client against the fake gateway playing a model that
follows the reading instructions (tests/fakes/doc_reader.py), a surface that records what
the chat shows. A 1,000-page Chinese report (reportlab, an embedded CJK font, a bookmark per
chapter), a scanned PDF, the go-ahead, a quota, and a restart mid-way."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bench.documents import reportlab_pdf
from bot.core.tokens import estimate_tokens
from bot.longdocs import wording
from bot.platform.controls import Action, Button, Press
from bot.platform.messages import Attachment, Author, ConversationKey, IncomingMessage
from bot.process.runtime import build_runtime
from bot.store.models import DocumentJob, DocumentResult, GatewayCall, Message, Part, Turn
from tests.conftest import PG_URL
from tests.fakes.doc_reader import DocumentModel, first_page, is_part, is_vision, pages_asked, part_of
from tests.fakes.gateway import Answer, last_user_text
from tests.polling import eventually
from tests.surfaces import RecordingSurface
from tests.test_documents_scanned import scanned_pdf

KEY = ConversationKey("console", "local", "analyst")
ALICE = Author("alice", "Alice")
QUESTION = "这份报告对我们的新品定价有什么启示？"
FAST_PROGRESS = {"PLATFORM_TIME_SCALE": 0.01}  # progress edits 30 ms apart instead of 3 s


@pytest.fixture(scope="session")
def report(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """1,000 pages of Chinese report text, a chapter bookmark every 100 pages (~1.08M tokens)."""
    path = tmp_path_factory.mktemp("longdocs") / "report.pdf"
    reportlab_pdf(1000, path, chapter_pages=100)
    return path.read_bytes()


def ask(text: str, *files: Attachment, key: ConversationKey = KEY) -> IncomingMessage:
    return IncomingMessage(
        key=key, author=ALICE, text=text, message_id=f"m-{len(text)}-{len(files)}", attachments=list(files)
    )


def pdf(data: bytes, name: str = "report.pdf") -> Attachment:
    return Attachment(data, "application/pdf", name)


async def scalar(runtime, query):
    async with runtime.db.read() as conn:
        return (await conn.execute(query)).scalar()


async def runtime_with(make_settings, **overrides):
    return await build_runtime(make_settings(**overrides), migrate=False)


def progress_texts(surface: RecordingSurface) -> list[str]:
    """Every text the progress message showed, in order."""
    return surface.messages[surface.order[0]].history


def parts_done(texts: list[str]) -> list[int]:
    return [int(m.group(1)) for t in texts for m in [re.search(r"第 (\d+) / \d+ 部分", t)] if m]


def covered(requests) -> list[int]:
    """Every page the part requests covered, in order asked."""
    pages = []
    for request in requests:
        _, _, covers = part_of(request.body)
        numbers = [int(n.replace(",", "")) for n in re.findall(r"[\d,]+", covers.split("—")[0])]
        pages.extend(range(numbers[0], numbers[-1] + 1))
    return pages


async def test_a_1000_page_report_is_answered_in_parts_and_a_follow_up_reuses_the_notes(
    make_settings, fake_gateway, report: bytes
) -> None:
    model = DocumentModel(
        answer="建议把新品定在 109 元 [page 55]；竞品集中在 [pages 200–201]，另见 [page 1,204]。", part_delay=0.05
    )
    fake_gateway.default = model
    rt = await runtime_with(make_settings, BOT_DOC_CONFIRM_ABOVE="", **FAST_PROGRESS)
    try:
        surface = RecordingSurface()
        await rt.service.handle(ask(QUESTION, pdf(report)), surface)

        parts = [r for r in fake_gateway.requests if is_part(r.body)]
        count = part_of(parts[0].body)[1]
        assert count == len(parts) >= 12, "the whole report, in parts that fit the window"
        assert sorted(covered(parts)) == list(range(1, 1001)), "every page read once, none twice"
        for request in parts:
            prompt = request.body["messages"][-1]["content"]
            page = first_page(part_of(request.body)[2])
            assert QUESTION in prompt and f"--- page {page} ---\n第 {page} 页 ·" in prompt
            assert estimate_tokens(prompt) < 200_000 - 16_384
        chapter_starts = {first_page(part_of(r.body)[2]) for r in parts}
        assert {101, 201, 301} & chapter_starts, "parts end where a bookmarked chapter begins"

        # Progress on the platform: a message of its own counting the parts, and the status line.
        shown = progress_texts(surface)
        assert shown[0].startswith("📖 《report.pdf》（1,000 页）一次读不完，正在分") and "第 0 / " in shown[0]
        done = parts_done(shown)
        assert len(set(done)) >= 3 and done == sorted(done), shown
        assert shown[-1] == f"📖 已分 {count} 部分读完《report.pdf》（1,000 页）。"
        assert f"第 {count} / {count} 部分" in surface.statuses

        # One answer from the notes, with a Sources line of the pages it cited that exist.
        final = fake_gateway.requests[-1].body
        assert not is_part(final) and len(fake_gateway.requests) == count + 1
        prompt = final["messages"][-1]["content"]
        assert "read in" in prompt and all(f"- 第 {n} 部分" in prompt for n in range(1, count + 1))
        assert "第 500 页 ·" not in prompt, "the answer's prompt holds the notes, not the text"
        answer = surface.messages[surface.order[-1]]
        assert answer.final and answer.text.startswith("建议把新品定在 109 元 [page 55]")
        assert answer.text.endswith("**来源：** 《report.pdf》第 55、200–201 页"), "page 1,204 does not exist"

        # Every call metered against the turn; the notes kept; the document now stands as them.
        calls = await scalar(rt, select(func.count()).select_from(GatewayCall).where(GatewayCall.kind == "document"))
        assert calls == count + 1
        assert await scalar(rt, select(func.count()).select_from(DocumentResult)) == count
        assert await scalar(rt, select(DocumentJob.state)) == "done"
        turn_cost = await scalar(rt, select(Turn.completion_tokens).where(Turn.kind == "document"))
        assert turn_cost and turn_cost > 0
        stored = await scalar(rt, select(Part.text).where(Part.kind == "document"))
        assert stored.startswith("[“report.pdf”: 1,000 pages, too long to read at once. It was read in")

        # A follow-up question is an ordinary answer from the stored notes: no part is read again.
        before = len(fake_gateway.requests)
        fake_gateway.default = DocumentModel(answer="第 200 页提到的竞品定价 99 元 [page 200]。")
        await rt.service.handle(ask("第 200 页提到的竞品是谁？"), surface)
        assert len(fake_gateway.requests) == before + 1
        follow = fake_gateway.requests[-1].body
        assert not is_part(follow) and wording.CITE_IN_CHAT in follow["messages"][0]["content"]
        history = " ".join(m["content"] for m in follow["messages"] if isinstance(m["content"], str))
        assert all(f"- 第 {n} 部分" in history for n in range(1, count + 1))
        assert surface.texts[-1].startswith("第 200 页提到的竞品定价 99 元")
    finally:
        await rt.close()


class OneChat:
    name = "console"

    def __init__(self, surface: RecordingSurface) -> None:
        self.surface = surface

    def surface_for(self, key: ConversationKey, *, reply_to: str = "", user: str = "") -> RecordingSurface:
        return self.surface


@pytest.mark.parametrize("part_tokens", [60_000, 30_000], ids=["same settings", "parts resized meanwhile"])
async def test_a_restart_mid_way_resumes_without_reading_finished_parts_again(
    make_settings, fake_gateway, report: bytes, part_tokens: int
) -> None:
    """Killed after six parts came back; the next process reads only the rest (the plan is
    stored with the job, so a changed BOT_DOC_PART_TOKENS does not re-cut a reading under way)."""
    held = asyncio.Event()
    first = DocumentModel(part_delay=0.02, hold=held, hold_after=6)
    fake_gateway.default = first
    settings = dict(BOT_DOC_CONFIRM_ABOVE="", BOT_DOC_CONCURRENCY=3, **FAST_PROGRESS)
    rt = await runtime_with(make_settings, **settings)
    surface = RecordingSurface()
    task = asyncio.create_task(rt.service.handle(ask(QUESTION, pdf(report)), surface))
    kept = await eventually(lambda: len(first.parts_seen) >= 9 and first.parts_seen)  # 6 answered, 3 held
    await eventually(lambda: any("第 6 / " in t for t in progress_texts(surface)))
    task.cancel()  # the process dies mid-way: nothing is finalised
    await asyncio.gather(task, return_exceptions=True)
    async with rt.db.read() as conn:
        finished = sorted((await conn.execute(select(DocumentResult.number))).scalars())
    await rt.close()
    assert len(finished) == 6 and len(kept) == 9

    second = DocumentModel(answer="接着读完了：定价 109 元 [page 55]。")
    fake_gateway.default = second
    rt = await runtime_with(make_settings, **settings, BOT_DOC_PART_TOKENS=part_tokens)
    try:
        rt.service.attach("console", OneChat(surface))  # the platform is back: the reading goes on
        await rt.service.drain()
        count = part_of(next(r for r in fake_gateway.requests if is_part(r.body)).body)[1]
        assert not set(second.parts_seen) & set(finished), "no finished part is read again"
        assert sorted(second.parts_seen) == sorted(set(range(1, count + 1)) - set(finished))
        async with rt.db.read() as conn:
            assert sorted((await conn.execute(select(DocumentResult.number))).scalars()) == list(range(1, count + 1))
            states = sorted((await conn.execute(select(Turn.status))).scalars())
        assert states == ["complete", "interrupted"]
        # What the chat shows: the half-written answer closed, the same progress message
        # carried on (it says the reading resumed), then the answer.
        progress = progress_texts(surface)
        assert surface.order[0] == "1" and any("接着上次：已有 6 部分读过" in t for t in progress)
        assert progress[-1] == f"📖 已分 {count} 部分读完《report.pdf》（1,000 页）。"
        assert surface.texts[-1].startswith("接着读完了：定价 109 元 [page 55]。")
        assert surface.texts[-1].endswith("**来源：** 《report.pdf》第 55 页")
    finally:
        await rt.close()


async def test_above_the_threshold_the_estimate_waits_for_a_go_ahead(
    make_settings, fake_gateway, report: bytes
) -> None:
    fake_gateway.default = DocumentModel(answer="定价 109 元 [page 55]。")
    rt = await runtime_with(make_settings, BOT_PRICE_INPUT=0.3, BOT_PRICE_OUTPUT=1.2, **FAST_PROGRESS)
    try:
        surface = RecordingSurface()
        await rt.service.handle(ask(QUESTION, pdf(report)), surface)
        assert fake_gateway.requests == [], "nothing is spent before the go-ahead"
        [estimate] = surface.texts
        assert estimate.startswith("《report.pdf》（1,000 页）超出一次能读的长度。要读完全文需分 ")
        tokens = int(re.search(r"约 \*\*([\d,]+) tokens\*\*", estimate).group(1).replace(",", ""))
        assert 1_000_000 < tokens < 2_000_000 and "USD）。要继续吗？" in estimate
        assert "只根据能一次读入的部分（第 1–" in estimate
        job = await scalar(rt, select(DocumentJob.id))
        go, cancel = Press("doc", job, ("go",)), Press("doc", job, ("cancel",))
        assert (Button("▶ 继续阅读", go, "primary"), Button("✖ 取消", cancel)) in surface.writes[-1].controls
        assert len(go.encode().encode()) <= 64

        ack = await rt.service.act(Action(go, ALICE, KEY), surface)
        assert ack.text == "开始分部分阅读…"
        await rt.service.drain()
        assert sum(1 for r in fake_gateway.requests if is_part(r.body)) >= 12
        assert surface.texts[-1].startswith("定价 109 元 [page 55]。")
        again = await rt.service.act(Action(go, ALICE, KEY), surface)
        assert again.text == "已经读完了。"
        user_messages = await scalar(rt, select(func.count()).select_from(Message).where(Message.role == "user"))
        assert user_messages == 2, "the go-ahead is a message of the conversation"
        assert await scalar(rt, select(DocumentJob.approved_by)) == "alice"

        # Cancel, in another chat: nothing is read, and later questions use what fit at once.
        other = ConversationKey("console", "local", "bob")
        before = len(fake_gateway.requests)
        await rt.service.handle(ask("总结一下", pdf(report), key=other), surface)
        job = await scalar(rt, select(func.max(DocumentJob.id)))
        ack = await rt.service.act(Action(Press("doc", job, ("cancel",)), ALICE, other), surface)
        assert ack.text == "已取消，没有花费。" and surface.texts[-1] == wording.cancelled_text("zh")
        assert len(fake_gateway.requests) == before
        assert (
            await rt.service.act(Action(Press("doc", job, ("cancel",)), ALICE, other), surface)
        ).text == "已经取消了。"
    finally:
        await rt.close()


async def test_more_than_the_quota_left_is_refused_before_anything_is_spent(
    make_settings, fake_gateway, report: bytes
) -> None:
    rt = await runtime_with(make_settings, BOT_QUOTA_USER_DAILY="300k tokens")
    try:
        surface = RecordingSurface()
        await rt.service.handle(ask(QUESTION, pdf(report)), surface)
        assert fake_gateway.requests == []
        [refusal] = surface.texts
        assert refusal.startswith("读完《report.pdf》预计需要约 ")
        assert "超过了你的每日额度剩余的 300,000 tokens" in refusal
        assert await scalar(rt, select(DocumentJob.state)) == "refused"
    finally:
        await rt.close()


async def test_scanned_pages_are_read_through_vision_inside_a_real_turn(make_settings, fake_gateway) -> None:
    """Six scanned pages (more than the four images a prompt carries) are transcribed two per
    call, with progress; the text then fits one prompt, so one answer call follows."""
    fake_gateway.default = DocumentModel(answer="第 5 页建议定价一百零九元 [page 5]。")
    data = scanned_pdf(["Executive summary: the market grew 23 percent this year."], 6)
    rt = await runtime_with(make_settings, BOT_DOC_VISION_BATCH=2, **FAST_PROGRESS)
    try:
        surface = RecordingSurface()
        await rt.service.handle(ask("扫描件里的定价建议是什么？", pdf(data, "scan.pdf")), surface)
        vision = [r for r in fake_gateway.requests if is_vision(r.body)]
        assert sorted(pages_asked(r.body) for r in vision) == [[2, 3], [4, 5], [6, 7]]  # in parallel
        assert not any(is_part(r.body) for r in fake_gateway.requests) and len(fake_gateway.requests) == 4
        prompt = fake_gateway.requests[-1].body["messages"][-1]["content"]
        assert "--- page 5 ---\n第5页 扫描件" in prompt and "market grew 23 percent" in prompt
        assert "read from their images" in prompt or "text was read from their" in prompt
        shown = progress_texts(surface)
        assert shown[0].startswith("🔎 《scan.pdf》有 6 页是扫描页，正在从图片识别文字：0 / 6 页")
        assert shown[-1] == "🔎 《scan.pdf》：已从图片识别 6 页扫描页。"
        answer = surface.texts[-1]
        assert answer.startswith("第 5 页建议定价一百零九元 [page 5]。\n\n**来源：** 《scan.pdf》第 5 页")
        assert "_《scan.pdf》第 2–7 页是扫描页，文字是从图片识别的" in answer
        stored = await scalar(rt, select(Part.text).where(Part.kind == "document"))
        assert "--- page 7 ---\n第7页 扫描件" in stored, "follow-ups see the transcriptions"
        assert (
            await scalar(rt, select(func.count()).select_from(DocumentResult).where(DocumentResult.kind == "page")) == 6
        )
    finally:
        await rt.close()


async def test_the_scanned_page_cap_says_which_pages_were_left_out(make_settings, fake_gateway) -> None:
    fake_gateway.default = DocumentModel(answer="Pricing is on [page 3].")
    data = scanned_pdf(["Executive summary: the market grew 23 percent this year."], 6)
    rt = await runtime_with(make_settings, BOT_DOC_VISION_PAGES=3, BOT_DOC_VISION_BATCH=3)
    try:
        surface = RecordingSurface()
        await rt.service.handle(ask("What pricing does the scan suggest?", pdf(data, "scan.pdf")), surface)
        assert [pages_asked(r.body) for r in fake_gateway.requests if is_vision(r.body)] == [[2, 3, 4]]
        answer = surface.texts[-1]
        assert "_Pages 2–4 of “scan.pdf” are scans" in answer
        assert "_Scanned pages 5–7 of “scan.pdf” were not read (the limit this time was 3 scanned pages)._" in answer
    finally:
        await rt.close()


async def test_two_documents_that_fit_alone_but_not_together_are_read_in_parts(
    make_settings, fake_gateway, tmp_path: Path
) -> None:
    model = DocumentModel(answer="两份都看了 [report-a.pdf, page 3] 和 [report-b.pdf, page 2]。")
    fake_gateway.default = model
    files = []
    for name in ("report-a.pdf", "report-b.pdf"):
        reportlab_pdf(12, tmp_path / name)
        files.append(pdf((tmp_path / name).read_bytes(), name))
    # A 30,000-token window: each 12-page file (~13k tokens) fits the document budget (~15.5k) alone.
    rt = await runtime_with(make_settings, BOT_CONTEXT_TOKENS=30_000, BOT_DOC_CONFIRM_ABOVE="")
    try:
        surface = RecordingSurface()
        await rt.service.handle(ask("比较这两份报告", *files), surface)
        parts = [r for r in fake_gateway.requests if is_part(r.body)]
        names = sorted(
            {re.search(r'<document name="([^"]+)"', r.body["messages"][-1]["content"]).group(1) for r in parts}
        )
        assert names == ["report-a.pdf", "report-b.pdf"] and len(parts) == 2
        assert surface.texts[-1].endswith("**来源：** 《report-a.pdf》第 3 页 · 《report-b.pdf》第 2 页")
    finally:
        await rt.close()


@pytest.fixture(scope="module")
def small_report(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """60 pages (~65k tokens): a handful of parts in a 30,000-token window."""
    path = tmp_path_factory.mktemp("small") / "report.pdf"
    reportlab_pdf(60, path)
    return path.read_bytes()


SMALL_WINDOW = dict(BOT_CONTEXT_TOKENS=30_000, BOT_DOC_CONFIRM_ABOVE="")


async def test_parts_stay_within_the_concurrency_and_back_off_when_the_gateway_is_busy(
    make_settings, fake_gateway, small_report: bytes
) -> None:
    model = DocumentModel(part_delay=0.1)
    running: list[int] = []

    def counting(body: dict):
        if is_part(body):
            running.append(fake_gateway.active + 1)  # this one and those still streaming
        return model(body)

    fake_gateway.default = counting
    rt = await runtime_with(make_settings, BOT_DOC_CONCURRENCY=2, BOT_MAX_RETRIES=0, **SMALL_WINDOW)
    try:
        surface = RecordingSurface()
        await rt.service.handle(ask(QUESTION, pdf(small_report)), surface)
        count = len(model.parts_seen)
        assert count >= 4 and max(running) == 2, running

        # Another reading, and the gateway turns its first call away with a 429: that part is
        # asked again after the pause it named, and the rest go one at a time.
        running.clear()
        model.parts_seen.clear()
        fake_gateway.script(Answer(status=429, retry_after="0.05"))
        other = ConversationKey("console", "local", "busy")
        await rt.service.handle(ask(QUESTION, pdf(small_report), key=other), surface)
        assert sorted(model.parts_seen) == list(range(1, count + 1)), "every part read, the refused one too"
        assert max(running) == 1, running
        assert surface.texts[-1].startswith("建议定价 109 元 [page 55]")
    finally:
        await rt.close()


async def test_a_part_the_gateway_refuses_is_named_and_regenerate_reads_only_that_part(
    make_settings, fake_gateway, small_report: bytes
) -> None:
    model = DocumentModel(answer="定价 109 元 [page 5]。")
    fake_gateway.default = model
    fake_gateway.script(Answer(status=400, error_body={"error": {"message": "sensitive content"}}))
    rt = await runtime_with(make_settings, BOT_DOC_CONCURRENCY=1, **SMALL_WINDOW)
    try:
        surface = RecordingSurface()
        await rt.service.handle(ask(QUESTION, pdf(small_report)), surface)
        count = part_of(next(r for r in fake_gateway.requests if is_part(r.body)).body)[1]
        assert sorted(model.parts_seen) == list(range(2, count + 1)), "part 1 was refused, the rest read"
        answer = surface.texts[-1]
        assert answer.startswith("定价 109 元 [page 5]。") and "没能读到" in answer and "重新生成" in answer
        progress = f"📖 《report.pdf》（60 页）分 {count} 部分阅读，读完了其中 {count - 1} 部分"
        assert surface.texts[0].startswith(progress)
        assert await scalar(rt, select(DocumentJob.state)) == "running"

        turn = await scalar(rt, select(func.max(Turn.id)))
        model.parts_seen.clear()
        await rt.service.act(Action(Press("regen", turn), ALICE, KEY), surface)
        await rt.service.drain()
        assert model.parts_seen == [1], "only the part that was missing is read again"
        assert "没能读到" not in surface.texts[-1] and await scalar(rt, select(DocumentJob.state)) == "done"
    finally:
        await rt.close()


@pytest.mark.skipif(not PG_URL, reason="several processes share a conversation only on PostgreSQL")
async def test_another_process_takes_up_a_reading_whose_process_died(
    make_settings, fake_gateway, small_report: bytes
) -> None:
    """Two processes on one database: the one reading dies mid-way; the other's sweep finalises
    its turn, queues the question again and reads only the parts that were missing."""
    held = asyncio.Event()
    model = DocumentModel(part_delay=0.02, hold=held, hold_after=2)
    fake_gateway.default = model
    settings = dict(BOT_DOC_CONCURRENCY=1, BOT_SWEEP_INTERVAL=0.3, **SMALL_WINDOW)
    survivor = await runtime_with(make_settings, **settings)
    surface = RecordingSurface()
    survivor.service.attach("console", OneChat(surface))
    doomed = await runtime_with(make_settings, **settings)
    try:
        task = asyncio.create_task(doomed.service.handle(ask(QUESTION, pdf(small_report)), surface))
        await eventually(lambda: len(model.parts_seen) >= 3)  # two read, the third held
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await doomed.close()  # its connections go, and with them its locks
        read_before = list(model.parts_seen[:2])
        model.hold, model.answer = None, "另一个进程接着读完了 [page 5]。"
        await eventually(lambda: surface.texts and surface.texts[-1].startswith("另一个进程接着读完了"), timeout=30)
        await survivor.service.drain()
        count = part_of(next(r for r in fake_gateway.requests if is_part(r.body)).body)[1]
        again = model.parts_seen[2:]
        assert not set(again) & set(read_before) and sorted(set(again) | set(read_before)) == list(range(1, count + 1))
        assert await scalar(survivor, select(DocumentJob.state)) == "done"
    finally:
        held.set()
        await survivor.close()


async def test_a_long_markdown_book_is_cut_at_its_headings_and_cited_by_section(make_settings, fake_gateway) -> None:
    chapters = [
        f"## 第{n}章 渠道{n}\n\n" + "\n\n".join(f"第{n}章第{p}段：价格带与渠道费用的讨论。" * 12 for p in range(1, 9))
        for n in range(1, 31)
    ]
    book = Attachment("\n\n".join(chapters).encode(), "text/markdown", "book.md")
    fake_gateway.default = DocumentModel(answer="渠道费用见 [section 7] 与 [section 12]，[section 99] 不存在。")
    rt = await runtime_with(make_settings, **SMALL_WINDOW)
    try:
        surface = RecordingSurface()
        await rt.service.handle(ask("渠道费用怎么影响定价？", book), surface)
        parts = [r for r in fake_gateway.requests if is_part(r.body)]
        assert len(parts) >= 3
        for request in parts:
            covers = part_of(request.body)[2]
            assert re.fullmatch(r"sections? \d+(–\d+)?", covers), covers  # whole chapters, never halves
            first = int(re.search(r"\d+", covers).group(0))
            assert f"--- section {first} “第{first}章 渠道{first}” ---" in request.body["messages"][-1]["content"]
        assert surface.texts[-1].endswith("**来源：** 《book.md》第 7、12 节")
    finally:
        await rt.close()


async def test_the_quota_left_lowers_the_scanned_page_cap(make_settings, fake_gateway) -> None:
    """Room for the answer and about two scanned pages: two are read, the rest are named."""
    fake_gateway.default = DocumentModel(answer="Pricing is on [page 2].")
    data = scanned_pdf(["Executive summary: the market grew 23 percent this year."], 6)
    rt = await runtime_with(make_settings, BOT_QUOTA_USER_DAILY="12k tokens", BOT_DOC_VISION_BATCH=1)
    try:
        surface = RecordingSurface()
        await rt.service.handle(ask("What pricing does the scan suggest?", pdf(data, "scan.pdf")), surface)
        read = sorted(page for r in fake_gateway.requests if is_vision(r.body) for page in pages_asked(r.body))
        assert 1 <= len(read) <= 3 and read == list(range(2, 2 + len(read)))
        answer = surface.texts[-1]
        left_out = f"{2 + len(read)}–7"
        assert (
            f"_Scanned pages {left_out} of “scan.pdf” were not read (the limit this time was {len(read)} "
            "scanned pages)._" in answer
        )
        # (What the calls cost is the gateway's count; the fake counts base64 images as text.)
        assert await scalar(rt, select(DocumentJob.estimate_tokens)) <= 12_000, "planned within what was left"
    finally:
        await rt.close()


async def test_stop_on_the_progress_message_ends_the_reading_and_regenerate_goes_on(
    make_settings, fake_gateway, small_report: bytes
) -> None:
    held = asyncio.Event()
    model = DocumentModel(hold=held, hold_after=2, answer="定价 109 元 [page 5]。")
    fake_gateway.default = model
    rt = await runtime_with(make_settings, BOT_DOC_CONCURRENCY=1, **SMALL_WINDOW, **FAST_PROGRESS)
    try:
        surface = RecordingSurface()
        task = asyncio.create_task(rt.service.handle(ask(QUESTION, pdf(small_report)), surface))
        await eventually(lambda: len(model.parts_seen) == 3)  # two read, the third held
        await eventually(lambda: any("第 2 / " in t for t in progress_texts(surface)))
        stops = [
            button.press
            for w in surface.writes
            for row in w.controls
            if isinstance(row, tuple)
            for button in row
            if button.press.kind == "stop"
        ]
        assert stops, "the progress message carries Stop while the reading runs"
        ack = await rt.service.act(Action(stops[-1], ALICE, KEY), surface)
        assert ack.text == "Stopping…"
        await task
        count = part_of(next(r for r in fake_gateway.requests if is_part(r.body)).body)[1]
        stopped = f"⏸ 《report.pdf》：读了 2 / {count} 部分后停下；读过的部分都保留了，按“重新生成”接着读。"
        assert progress_texts(surface)[-1] == stopped and surface.texts[-1] == "_(stopped)_"
        assert await scalar(rt, select(Turn.status)) == "stopped"

        model.hold, model.parts_seen = None, []
        turn = await scalar(rt, select(Turn.id))
        await rt.service.act(Action(Press("regen", turn), ALICE, KEY), surface)
        await rt.service.drain()
        assert sorted(model.parts_seen) == list(range(3, count + 1)), "the two parts read are not read again"
        assert surface.texts[-1].startswith("定价 109 元 [page 5]。")
    finally:
        held.set()
        await rt.close()


async def test_a_parts_notes_are_kept_before_the_next_part_starts(make_settings, fake_gateway) -> None:
    """One slot: part 2 is asked for only once part 1's notes are stored, so a process that
    dies between the two has lost nothing it read (another process resumes at part 2)."""
    from bot.gateway.client import GatewayClient
    from bot.longdocs.summarise import PartCall, PartNotes, read_parts

    fake_gateway.default = lambda body: Answer(text="notes of " + last_user_text(body), reasoning="读")
    storing, stored = asyncio.Event(), asyncio.Event()
    kept: list[int] = []

    async def on_notes(notes: PartNotes) -> None:
        if notes.number == 1:
            storing.set()
            await stored.wait()  # a slow database write
        kept.append(notes.number)

    calls = [PartCall(n, 0, "summarise", f"part {n}", 200) for n in (1, 2)]
    async with GatewayClient(make_settings()) as client:
        reading = asyncio.create_task(read_parts(client, calls, concurrency=1, on_notes=on_notes))
        await asyncio.wait_for(storing.wait(), 10)
        await asyncio.sleep(0.2)  # the behaviour under test: given time, part 2 is still not asked for
        assert len(fake_gateway.requests) == 1
        stored.set()
        outcome = await asyncio.wait_for(reading, 10)
    assert kept == [1, 2] and [n.number for n in outcome.notes] == [1, 2]
    assert len(fake_gateway.requests) == 2
