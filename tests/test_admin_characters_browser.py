"""The admin page's characters in a real browser (Debian's headless Chromium via Playwright,
the real ASGI app under uvicorn): find a character from the navigation, edit it through the
form, see a refused edit explained, delete it; nothing wider than a phone's screen."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
import uvicorn

from bot.admin.app import create_admin_app
from bot.admin.auth import AdminAuth
from bot.platform.messages import ConversationKey
from bot.process.runtime import build_runtime
from bot.process.webapp import create_app
from bot.store.characters import CharacterScope, CharacterStore
from tests.polling import eventually
from tests.processes import free_port
from tests.test_admin_browser import ARGS, CHROMIUM, PASSWORD
from tests.test_characters_cards import MOCHI

pytestmark = pytest.mark.browser
GROUP = ConversationKey("telegram", "bot1", "-100200")


@pytest.fixture
async def site(make_settings):
    settings = make_settings(BOT_TIMEZONE="UTC")
    rt = await build_runtime(settings, migrate=False)
    await AdminAuth(settings, rt.db).set_password(PASSWORD)
    store = CharacterStore(rt.db)
    mochi = await store.create(GROUP, CharacterScope.GROUP, "42", MOCHI)
    await store.create(
        GROUP,
        CharacterScope.GROUP,
        "43",
        replace(MOCHI, name="Captain Bao", nickname="", identity="The steamed-bun pirate captain"),
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app([], admin=create_admin_app(settings, rt.db)),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    serving = asyncio.create_task(server.serve())
    await eventually(lambda: server.started)
    try:
        yield dict(base=f"http://127.0.0.1:{port}", store=store, mochi=mochi)
    finally:
        server.should_exit = True
        await serving
        await rt.close()


async def test_an_operator_edits_and_deletes_a_character(site, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    base, store, mochi = site["base"], site["store"], site["mochi"]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            await page.goto(f"{base}/admin/characters")
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{base}/admin/characters")
            await expect(page.locator("#character-count")).to_contain_text("2 character(s)")
            await expect(page.locator("#characters")).to_contain_text("The steamed-bun pirate captain")
            await page.click("#characters >> text=Mochi")
            await page.wait_for_url(f"{base}/admin/characters/{mochi.id}")
            form = page.locator("#character-form")
            await expect(form.locator("textarea[name=examples]")).to_contain_text("{{char}}: hi {{user}}~")
            await form.locator("textarea[name=personality]").fill("sleepy, warm, proud of every bun")
            await form.locator("textarea[name=catchphrases]").fill("mochi-mochi~\nlet it rise!\nknead to know")
            await form.locator("button[type=submit]").click()
            await expect(page.locator("#notice")).to_have_text("Saved.")
            saved = await store.get(mochi.id)
            assert saved.character.personality == "sleepy, warm, proud of every bun"
            assert saved.character.speech.catchphrases[-1] == "knead to know" and saved.revision == 2
            await expect(page.locator("#tokens")).to_contain_text(f"{saved.prompt_tokens:,} tokens")

            # Renaming it to a name taken in the same chat: refused, explained, nothing lost.
            await form.locator("input[name=name]").fill("Captain Bao")
            await form.locator("button[type=submit]").click()
            await expect(page.get_by_role("alert")).to_contain_text("already a character called")
            await expect(form.locator("input[name=name]")).to_have_value("Captain Bao")
            assert (await store.get(mochi.id)).name == "Mochi"

            shot = tmp_path / "admin-character.png"
            await page.screenshot(path=str(shot), full_page=True)
            print(f"\nadmin character page: {shot}")
            await page.set_viewport_size({"width": 390, "height": 844})
            for path in ("/admin/characters", f"/admin/characters/{mochi.id}"):
                await page.goto(base + path)
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, (path, width)

            await page.click("#delete-form button")
            await page.wait_for_url(f"{base}/admin/characters?*")
            await expect(page.locator("#notice")).to_have_text("Deleted Mochi.")
            await expect(page.locator("#character-count")).to_contain_text("1 character(s)")
            assert await store.get(mochi.id) is None
        finally:
            await browser.close()
