"""Issue 21 through the real adapters: a report too long for the window sent on Telegram (the
real python-telegram-bot against the fake Bot API) and on Slack (real slack-bolt against the
fake Slack API), the estimate with its go-ahead button, a tap on it, progress, and the
answer from the parts with its Sources line."""

from __future__ import annotations

import pytest

from bench.documents import reportlab_pdf
from tests.fakes.doc_reader import DocumentModel, is_part
from tests.slack_harness import DM, Harness
from tests.telegram_harness import ALICE, _buttons, answered, no_limit_broken
from tests.test_longdocs import QUESTION
from tests.test_telegram_copywriting import pdf_document

# A 30,000-token window: the 60-page report (~65k tokens) is read in a handful of parts, and
# an estimate past 10k tokens asks first.
SMALL_WINDOW = dict(BOT_CONTEXT_TOKENS=30_000, BOT_DOC_CONFIRM_ABOVE="10k tokens")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("report") / "report.pdf"
    reportlab_pdf(60, path)
    return path.read_bytes()


async def test_telegram_go_ahead_reads_the_report_in_parts(start_bot, tg, fake_gateway, report: bytes) -> None:
    fake_gateway.default = DocumentModel(answer="建议定价 109 元 [page 5]。")
    await start_bot(**SMALL_WINDOW)
    shared = {**pdf_document(tg, report, "report.pdf"), "caption": QUESTION}
    tg.send_user_message(ALICE["id"], ALICE, None, extra=shared)
    [estimate] = await answered(tg, ALICE["id"])
    assert estimate.text.startswith("《report.pdf》（60 页）超出一次能读的长度。") and fake_gateway.requests == []
    go, cancel, *core = _buttons(estimate)
    assert go.startswith("doc:") and go.endswith(":go") and cancel.endswith(":cancel") and core[0].startswith("regen:")

    tg.press_button(ALICE["id"], estimate.message_id, ALICE, go)
    messages = await answered(tg, ALICE["id"], 2, timeout=30)
    parts = [r for r in fake_gateway.requests if is_part(r.body)]
    assert 3 <= len(parts) == len(fake_gateway.requests) - 1
    progress = next(m for m in messages if m.text.startswith("📖"))
    assert progress.text == f"📖 已分 {len(parts)} 部分读完《report.pdf》（60 页）。" and not _buttons(progress)
    answer = messages[-1]
    assert answer.text.startswith("建议定价 109 元 [page 5]。") and answer.text.endswith("来源： 《report.pdf》第 5 页")
    bold = [
        answer.text.encode("utf-16-le")[e["offset"] * 2 : (e["offset"] + e["length"]) * 2].decode("utf-16-le")
        for e in answer.entities
        if e["type"] == "bold"
    ]
    assert "来源：" in bold, "the Sources line is rendered, not shown as raw Markdown"
    acks = [c.params.get("text") for c in tg.calls_to("answerCallbackQuery")]
    assert acks == ["开始分部分阅读…"]
    no_limit_broken(tg)


async def test_slack_go_ahead_reads_the_report_in_parts(slack_with, fake_gateway, report: bytes) -> None:
    fake_gateway.default = DocumentModel(answer="建议定价 109 元 [page 5]。")
    h: Harness = await slack_with(**SMALL_WINDOW)
    fake = h.fake
    shared = fake.add_file("report.pdf", "application/pdf", report)
    ts, envelope = fake.user_message(DM, QUESTION, files=[shared])
    await h.send(envelope)
    await h.settle()
    [estimate] = fake.bot_replies(DM, ts)
    assert estimate.text.startswith("《report.pdf》（60 页）超出一次能读的长度。") and fake_gateway.requests == []
    assert {"answer_doc_go", "answer_doc_cancel"} <= set(estimate.button_ids)

    response = await h.click(fake.block_action(estimate, "answer_doc_go"))
    assert response.status_code == 200
    await h.settle(timeout=60)
    parts = [r for r in fake_gateway.requests if is_part(r.body)]
    assert 3 <= len(parts) == len(fake_gateway.requests) - 1
    replies = fake.bot_replies(DM, ts)
    progress = next(m for m in replies if m.text.startswith("📖"))
    assert progress.text == f"📖 已分 {len(parts)} 部分读完《report.pdf》（60 页）。"
    answer = replies[-1]
    assert answer.text.startswith("建议定价 109 元 [page 5]。")
    assert answer.text.endswith("**来源：** 《report.pdf》第 5 页")  # markdown_text: Slack renders it
    statuses = [c.args.get("status") for c in fake.calls_to("assistant.threads.setStatus")]
    assert any(s and ("部分" in s or "写回答" in s) for s in statuses), statuses


async def test_console_reads_the_report_in_parts_after_read_go(
    make_settings, fake_gateway, report: bytes, tmp_path
) -> None:
    """The terminal has no buttons: the estimate names ``/read go``, typed as the next line."""
    import io

    from adapters.console.chat import ConsoleAdapter, run_chat
    from adapters.console.settings import ConsoleSettings
    from bot.process.runtime import build_runtime

    fake_gateway.default = DocumentModel(answer="建议定价 109 元 [page 5]。")
    runtime = await build_runtime(make_settings(**SMALL_WINDOW), migrate=False)
    try:
        adapter = runtime.adapter(ConsoleAdapter, ConsoleSettings.load(_env_file=None))
        path = tmp_path / "report.pdf"
        path.write_bytes(report)
        out = io.StringIO()
        await run_chat(adapter, stdin=io.StringIO(f"/attach {path}\n{QUESTION}\n/read go\n"), stdout=out, user="t")
        shown = out.getvalue()
        estimate = shown.index("超出一次能读的长度")
        assert shown.index("（也可以发送 `/read go` 或 `/read cancel`。）") > estimate
        parts = [r for r in fake_gateway.requests if is_part(r.body)]
        assert len(parts) >= 3
        done = shown.index(f"📖 已分 {len(parts)} 部分读完《report.pdf》（60 页）。")
        assert estimate < done < shown.index("建议定价"), "the progress is final before the answer begins"
        assert shown.rstrip().endswith("建议定价 109 元 [page 5]。\n\n**来源：** 《report.pdf》第 5 页")
    finally:
        await runtime.close()
