"""The admin page's characters over HTTP: listed, edited with the card's checks (a size cap, a
stale revision), deleted, downloaded; behind the login and CSRF like every other form; card
text escaped on the page."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from bot.admin.auth import AdminAuth
from bot.characters.cards import read_card
from bot.platform.messages import ConversationKey
from bot.store.characters import CharacterScope, CharacterStore
from bot.store.db import Database
from bot.store.repo import Store
from tests.test_admin_http import PASSWORD, client_for, hidden, login
from tests.test_characters_cards import MOCHI

GROUP = ConversationKey("telegram", "bot1", "-100200")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


async def test_characters_are_listed_edited_and_deleted(settings, db) -> None:
    store = CharacterStore(db)
    mochi = await store.create(GROUP, CharacterScope.GROUP, "42", replace(MOCHI, identity="<b>A mascot</b>"))
    conv = await Store(db).conversation(GROUP, shared=True)
    await store.set_active(conv.id, mochi.id)
    await AdminAuth(settings, db).set_password(PASSWORD)
    async with client_for(settings, db) as client:
        assert (await client.get("/admin/characters")).status_code == 303, "behind the login"
        await login(client)
        listing = await client.get("/admin/characters")
        assert listing.status_code == 200 and f'href="/admin/characters/{mochi.id}"' in listing.text
        assert "&lt;b&gt;A mascot&lt;/b&gt;" in listing.text and "<b>A mascot" not in listing.text
        assert f"{mochi.prompt_tokens:,}" in listing.text
        page = await client.get(f"/admin/characters/{mochi.id}")
        csrf, revision = hidden(page.text, "csrf"), hidden(page.text, "revision")
        fields = {
            "name": "Mochi",
            "identity": "A sleepy rice-cake mascot",
            "catchphrases": "mochi-mochi~\nrise up!",
            "revision": revision,
        }
        # Without the CSRF token nothing changes.
        assert (await client.post(f"/admin/characters/{mochi.id}", data=fields)).status_code == 403
        done = await client.post(f"/admin/characters/{mochi.id}", data={**fields, "csrf": csrf})
        assert done.status_code == 303 and "notice=Saved" in done.headers["location"]
        saved = await store.get(mochi.id)
        assert saved is not None and saved.revision == 2 and saved.character.identity == "A sleepy rice-cake mascot"
        assert saved.character.speech.catchphrases == ("mochi-mochi~", "rise up!")
        assert saved.character.background == MOCHI.background, "fields left as they were are kept"
        # The same (now stale) revision again: refused, nothing overwritten.
        stale = await client.post(f"/admin/characters/{mochi.id}", data={**fields, "identity": "x", "csrf": csrf})
        assert stale.status_code == 400 and "changed by someone else" in stale.text
        # Over a size cap: refused with the reason, the typed text kept in the form.
        huge = await client.post(
            f"/admin/characters/{mochi.id}",
            data={**fields, "revision": "2", "background": "word " * 20_000, "csrf": csrf},
        )
        assert huge.status_code == 400 and "the background is about" in huge.text and "word word" in huge.text
        assert (await store.get(mochi.id)).revision == 2  # type: ignore[union-attr]
        # The card downloads as V2 JSON that reads back.
        card = await client.get(f"/admin/characters/{mochi.id}/card.json")
        assert card.headers["content-type"] == "application/json"
        assert "attachment" in card.headers["content-disposition"]
        assert read_card(card.content, "Mochi.json").character.identity == "A sleepy rice-cake mascot"
        assert json.loads(card.content)["spec"] == "chara_card_v2"
        # Deleting clears it from the chat that spoke as it.
        gone = await client.post(f"/admin/characters/{mochi.id}/delete", data={"csrf": csrf})
        assert gone.status_code == 303 and "Deleted+Mochi" in gone.headers["location"]
        assert await store.get(mochi.id) is None
        assert (await Store(db).conversation(GROUP)).character_id is None  # type: ignore[union-attr]
        assert (await client.get(f"/admin/characters/{mochi.id}")).status_code == 404
