"""Brand profiles on the admin page in a real browser (issue 18): Debian's headless Chromium
driven by Playwright against the real ASGI app, a database whose profile was saved from a chat,
and the chat's next prompt showing what the page changed."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import httpx
import pytest
import uvicorn

from bot.admin.app import create_admin_app
from bot.admin.auth import AdminAuth
from bot.brands.profile import prompt_section
from bot.compliance.brand import Money, Spec
from bot.platform.controls import Action, Press
from bot.platform.messages import Author, ConversationKey, IncomingMessage
from bot.process.runtime import build_runtime
from bot.process.webapp import create_app
from bot.store.brands import BrandStore, Place
from tests.fakes.gateway import Answer
from tests.polling import eventually
from tests.processes import free_port
from tests.surfaces import RecordingSurface
from tests.test_admin_browser import ARGS, CHROMIUM, PASSWORD

pytestmark = pytest.mark.browser

GROUP = ConversationKey("telegram", "bot1", "-100555")
DRAFTED = {
    "name": "山茶集",
    "audience": "都市女性",
    "tone": "温和",
    "words_to_use": [],
    "words_never": ["便宜货"],
    "products": [
        {
            "name": "山茶花精华",
            "aliases": ["精华液"],
            "selling_points": ["温和不刺激"],
            "price": "129元",
            "specs": [{"name": "容量", "value": "30ml"}],
        }
    ],
}


def said(text: str) -> IncomingMessage:
    return IncomingMessage(key=GROUP, author=Author("42", "Alice"), text=text, group=True, message_id=text[:10])


@pytest.fixture
async def world(make_settings, fake_gateway):
    settings = make_settings()
    rt = await build_runtime(settings, migrate=False)
    await AdminAuth(settings, rt.db).set_password(PASSWORD)
    # The profile is drafted and saved in the chat, as a team would.
    fake_gateway.script(Answer(text=json.dumps(DRAFTED, ensure_ascii=False)))
    surface = RecordingSurface()
    await rt.service.handle(said("/brand set 山茶集……"), surface)
    await rt.service.act(
        Action(Press("brand", surface.writes[-1].turn_id, ("save",)), Author("42", "Alice"), GROUP), surface
    )
    port = free_port()
    app = create_app([], admin=create_admin_app(settings, rt.db))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    await eventually(lambda: server.started)
    try:
        yield dict(rt=rt, base=f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await serving
        await rt.close()


async def test_an_operator_edits_a_chats_brand_profile(world, fake_gateway) -> None:
    from playwright.async_api import async_playwright, expect

    base, rt = world["base"], world["rt"]
    brands = BrandStore(rt.db)
    saved = await brands.get(GROUP)
    assert saved is not None and saved.revision == 1
    async with httpx.AsyncClient() as client:  # a form without the session's CSRF token changes nothing
        refused = await client.post(f"{base}/admin/brands/{saved.id}/delete", data={"csrf": "x"})
        assert refused.status_code == 303 and "/admin/login" in refused.headers["location"]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            await page.goto(f"{base}/admin/brands")
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{base}/admin/brands")
            row = page.locator("#brands tr", has_text="telegram:bot1:-100555")
            await expect(row).to_contain_text("山茶集")
            await expect(row).to_contain_text("山茶花精华")
            await expect(row).to_contain_text("telegram:42")
            await row.locator("a").click()

            form = page.locator("#brand-form")
            await expect(form.locator("input[name=p0-price]")).to_have_value("¥129")
            await expect(form.locator("textarea[name=p0-specs]")).to_have_value("容量: 30ml")
            # A price that is no price: refused with the reason, nothing typed is lost, nothing stored.
            await form.locator("textarea[name=tone]").fill("温和、真诚，不夸张")
            await form.locator("input[name=p0-price]").fill("very cheap")
            await form.locator("button[type=submit]").click()
            await expect(page.locator("#error")).to_contain_text("price: 'very cheap' is not a price")
            await expect(form.locator("textarea[name=tone]")).to_have_value("温和、真诚，不夸张")
            assert (await brands.get(GROUP)).revision == 1

            await form.locator("input[name=p0-price]").fill("139元")
            await form.locator("textarea[name=never]").fill("便宜货\n平替、大牌平替")
            await form.locator("input[name=p1-name]").fill("山茶面霜")  # the empty row adds a product
            await form.locator("input[name=p1-price]").fill("199")
            await form.locator("textarea[name=p1-specs]").fill("重量: 50g")
            await form.locator("textarea[name=p1-points]").fill("保湿\n修护")
            await form.locator("button[type=submit]").click()
            await expect(page.locator("#notice")).to_have_text("Saved.")

            stored = await brands.get(GROUP)
            assert stored.revision == 2 and stored.updated_by == "admin page"
            profile = stored.profile
            assert profile.tone == "温和、真诚，不夸张" and profile.words_never == ("便宜货", "平替", "大牌平替")
            assert [p.name for p in profile.products] == ["山茶花精华", "山茶面霜"]
            assert profile.products[0].price == Money(Decimal("139"))
            assert profile.products[0].aliases == ("精华液",)
            assert profile.products[1].specs == (Spec("重量", Decimal("50"), "g"),)
            assert profile.products[1].selling_points == ("保湿", "修护")

            # The chat's next turn has the edited profile in its stable prompt.
            await rt.service.handle(said("hello"), RecordingSurface())
            assert fake_gateway.last.body["messages"][0]["content"].endswith(prompt_section(profile))

            # Someone edits in the chat meanwhile: the form's older revision is refused, not written over.
            await rt.service.handle(said("/brand edit tone: 专业"), RecordingSurface())
            await form.locator("input[name=p0-remove]").check()
            await form.locator("button[type=submit]").click()
            await expect(page.locator("#error")).to_contain_text("changed by someone else")
            assert [p.name for p in (await brands.get(GROUP)).profile.products] == ["山茶花精华", "山茶面霜"]

            # A profile for another chat; a chat written wrongly is explained.
            await page.click("nav >> text=Brands")
            new = page.locator("#new-brand")
            await new.locator("input[name=place]").fill("slack-T1-C1")
            await new.locator("input[name=name]").fill("桂花坊")
            await new.locator("button[type=submit]").click()
            await expect(page.locator("#error")).to_contain_text("platform:workspace:chat")
            await new.locator("input[name=place]").fill("slack:T1:C1")
            await new.locator("button[type=submit]").click()
            await expect(page.locator("h1")).to_contain_text("桂花坊")
            assert (await brands.get(Place("slack", "T1", "C1"))).profile.name == "桂花坊"

            # On a phone the form fits the screen.
            await page.set_viewport_size({"width": 390, "height": 844})
            await page.goto(f"{base}/admin/brands/{saved.id}")
            assert await page.evaluate("document.documentElement.scrollWidth") <= 390

            await page.locator("#delete-brand button").click()
            await expect(page.locator("#notice")).to_contain_text("was deleted")
            assert await brands.get(GROUP) is None
        finally:
            await browser.close()
