"""The admin page in a real browser: Debian's headless Chromium driven by Playwright, against
the real ASGI app served by uvicorn and a database seeded through the real code paths."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn

from bot.admin.app import create_admin_app
from bot.admin.auth import AdminAuth
from bot.platform.messages import Author, ConversationKey, IncomingMessage
from bot.process.runtime import build_runtime
from bot.process.webapp import create_app
from bot.store.usage import CallRow, UsageStore
from bot.usage.periods import local_now
from tests.fakes.gateway import Answer
from tests.polling import eventually
from tests.processes import free_port
from tests.surfaces import RecordingSurface

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "a browser-tested password"
LLAMA = ConversationKey("telegram", "bot1", "555")


def llama_msg(text: str) -> IncomingMessage:
    return IncomingMessage(key=LLAMA, author=Author("42", "Alice Andes"), text=text, message_id=f"m-{text[:8]}")


def seeded(
    day: str,
    turn: int,
    prompt: int,
    cached: int,
    completion: int,
    cost: float,
    outcome: str = "ok",
    kind: str | None = None,
) -> CallRow:
    return CallRow(
        turn_id=turn,
        conversation_id=None,
        platform="slack",
        user_id="U7",
        kind="chat",
        model="m",
        day=day,
        prompt_tokens=prompt,
        cached_tokens=cached,
        completion_tokens=completion,
        cost=cost,
        ttft_ms=300,
        duration_ms=900,
        outcome=outcome,
        error_kind=kind,
        error="gateway said 429" if kind else None,
    )


@pytest.fixture
async def world(make_settings, fake_gateway):
    settings = make_settings(
        BOT_PRICE_INPUT="2", BOT_PRICE_CACHED_INPUT="0.5", BOT_PRICE_OUTPUT="8", BOT_TIMEZONE="UTC"
    )
    rt = await build_runtime(settings, migrate=False)
    await AdminAuth(settings, rt.db).set_password(PASSWORD)
    today = local_now("UTC").date()
    d2, d1 = (today - timedelta(days=2)).isoformat(), (today - timedelta(days=1)).isoformat()
    store = UsageStore(rt.db)
    for call in (
        seeded(d2, 9001, 3000, 1000, 300, 0.0100),
        seeded(d2, 9002, 1000, 0, 200, 0.0023),
        seeded(d1, 9003, 2000, 1500, 250, 0.0045),
        seeded(d1, 9004, 0, 0, 0, 0.0, "error", "rate_limit"),
    ):
        await store.record_call(call, [])
    # Today: a real conversation through the core (fake gateway), reasoning included.
    fake_gateway.script(
        Answer(
            text="Llamas live in the Andes.",
            reasoning="The user asks about llamas.",
            reasoning_style="reasoning_content",
            prompt_tokens=1000,
            cached_tokens=0,
            completion_tokens=100,
        )
    )
    await rt.service.handle(llama_msg("Tell me about llamas in the Andes"), RecordingSurface())
    fake_gateway.script(Answer(text="Budget noted.", prompt_tokens=10, completion_tokens=5))
    await rt.service.handle(
        IncomingMessage(
            key=ConversationKey("slack", "T1", "C1", "1.0"),
            author=Author("U7", "Bob"),
            text="quarterly budget please",
            message_id="s1",
        ),
        RecordingSurface(),
    )
    port = free_port()
    app = create_app([], admin=create_admin_app(settings, rt.db))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    await eventually(lambda: server.started)
    try:
        yield dict(rt=rt, base=f"http://127.0.0.1:{port}", d2=d2, d1=d1, today=today.isoformat())
    finally:
        server.should_exit = True
        await serving
        await rt.close()


async def values(page, chart: str) -> list[str]:
    """The numbers printed on a chart (pygal's value labels inside the SVG)."""
    return [t.strip() for t in await page.locator(f"#{chart} svg text.value").all_text_contents()]


async def test_operator_walkthrough(world, fake_gateway, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    assert Path(CHROMIUM).exists(), "install Debian's chromium (.ci/run does)"
    base = world["base"]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            # Without a session every page sends you to the login.
            await page.goto(f"{base}/admin/conversations")
            assert "/admin/login" in page.url
            await page.fill("#password", "not the right password")
            await page.click("button[type=submit]")
            await expect(page.get_by_role("alert")).to_have_text("Wrong password.")
            assert "/admin/login" in page.url
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{base}/admin/conversations")

            # Overview: the seeded figures, drawn.
            await page.goto(f"{base}/admin/?days=7")
            today_cost = (1000 * 2 + 100 * 8 + 10 * 2 + 5 * 8) / 1e6  # the two real turns of today
            cost_labels = await values(page, "chart-cost")
            assert cost_labels == ["0.0123", "0.0045", f"{today_cost:.4f}"]  # days without use: no label
            assert await values(page, "chart-turns") == ["2", "2", "2"]  # the failed turn counts too
            tokens = await values(page, "chart-tokens")  # fresh prompt, cached, completion stacks
            assert {"3,000", "1,000", "500", "1,500", "250", "1,010", "105"} <= set(tokens)
            assert await values(page, "chart-cache") == ["25.0", "75.0", "0.0"]  # today: nothing cached
            assert "rate_limit" in await page.locator("#chart-errors").inner_text()
            assert await values(page, "chart-errors") == ["1"]
            latency = await values(page, "chart-latency")  # only today's real turns have timings
            assert len(latency) == 2 and all(v.replace(",", "").isdigit() for v in latency)
            await expect(page.locator("#total-cost")).to_have_text(f"{0.0168 + today_cost:.4f} USD")
            await expect(page.locator("#total-turns")).to_have_text("6")
            shot = tmp_path / "admin-overview.png"
            await page.screenshot(path=str(shot), full_page=True)
            print(f"\nadmin overview screenshot: {shot}")

            # Conversations: search by text, open the thread; reasoning is folded away.
            await page.click("text=Conversations")
            await page.fill("input[name=text]", "LLAMAS")
            await page.click("text=Search")
            await expect(page.locator("#result-count")).to_have_text("1 conversation(s)")
            await page.click("table.list tbody a >> nth=0")
            await expect(page.locator(".msg.assistant .text")).to_have_text("Llamas live in the Andes.")
            reasoning = page.locator("details.reasoning")
            assert await reasoning.get_attribute("open") is None
            assert not await page.get_by_text("The user asks about llamas.").is_visible()
            await expect(page.locator(".turn-cost")).to_have_text("0.0028 USD")
            await page.click("details.reasoning summary")
            assert await page.get_by_text("The user asks about llamas.").is_visible()
            await page.goto(f"{base}/admin/conversations?user=bob")
            await expect(page.locator("#result-count")).to_have_text("1 conversation(s)")

            # Users & quotas: a limit set here stops the next message before the model.
            await page.click("text=Users & quotas")
            form = page.locator("#quota-form")
            await form.locator("select[name=scope]").select_option("user")
            await form.locator("input[name=subject]").fill("telegram:42")
            await form.locator("select[name=period]").select_option("day")
            await form.locator("input[name=budget]").fill("500 tokens")
            await form.locator("button[value=set]").click()
            await expect(page.locator("#notice")).to_have_text("Daily user limit for telegram:42: 500 tokens.")
            served = fake_gateway.served
            surface = RecordingSurface()
            await world["rt"].service.handle(llama_msg("And alpacas?"), surface)
            assert fake_gateway.served == served
            assert (
                surface.texts == [surface.texts[0]]
                and "You have reached your daily limit of 500 tokens" in surface.texts[0]
            )
            # Blocking from the top-users table.
            row = page.locator("#top-users tr", has_text="slack:U7")
            await row.locator("button[value=block]").click()
            await expect(page.locator("#top-users tr", has_text="slack:U7")).to_contain_text("blocked")

            await page.click("text=Health")
            await expect(page.locator("#platforms")).to_contain_text("telegram")
            await expect(page.locator("body")).to_contain_text("gateway said 429")
            await page.click("text=Styles")
            await expect(page.locator("body")).to_contain_text("xiaohongshu")

            # On a phone: one column, nothing wider than the screen (tables scroll inside their box).
            await page.set_viewport_size({"width": 390, "height": 844})
            for path in ("/admin/", "/admin/users", "/admin/conversations"):
                await page.goto(base + path)
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, (path, width)
            await page.goto(f"{base}/admin/")
            phone = tmp_path / "admin-overview-phone.png"
            await page.screenshot(path=str(phone), full_page=True)
            print(f"admin overview on a phone: {phone}")

            # Logging out ends the session.
            await page.click("text=Log out")
            await page.wait_for_url(f"{base}/admin/login")
            await page.goto(f"{base}/admin/")
            assert "/admin/login" in page.url
        finally:
            await browser.close()
