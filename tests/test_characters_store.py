"""Characters in SQL (SQLite, or PostgreSQL with TEST_DATABASE_URL): what a chat can use,
names unique per place whatever their case, edits that don't overwrite each other, the
active character kept across /new and cleared when deleted, and a migration that never
touches messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from sqlalchemy import func, insert, select

from bot.characters.character import Character, CharacterError, prompt_tokens
from bot.platform.messages import ConversationKey
from bot.store.characters import CharacterScope, CharacterStore, NameTaken, StaleEdit
from bot.store.db import Database
from bot.store.migrate import downgrade, upgrade
from bot.store.models import Conversation, Message
from bot.store.repo import Store
from tests.test_characters_cards import MOCHI

GROUP = ConversationKey("telegram", "bot1", "-100200")
OTHER_GROUP = ConversationKey("telegram", "bot1", "-100300")
DM = ConversationKey("telegram", "bot1", "42")
SLACK = ConversationKey("slack", "T1", "C1")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()


def named(name: str, **changes: object) -> Character:
    return replace(MOCHI, name=name, **changes)


async def test_a_chat_uses_its_own_and_its_workspaces_characters(db: Database) -> None:
    store = CharacterStore(db)
    await store.create(GROUP, CharacterScope.GROUP, "7", named("Mochi"))
    await store.create(GROUP, CharacterScope.WORKSPACE, "1", named("Captain Bao"))
    await store.create(OTHER_GROUP, CharacterScope.GROUP, "8", named("Pip"))
    await store.create(DM, CharacterScope.CHAT, "42", named("Zed"))
    await store.create(SLACK, CharacterScope.WORKSPACE, "U1", named("Slacky"))
    assert [s.name for s in await store.usable(GROUP)] == ["Mochi", "Captain Bao"]  # the chat's first
    assert [s.name for s in await store.usable(OTHER_GROUP)] == ["Pip", "Captain Bao"]
    assert [s.name for s in await store.usable(DM)] == ["Zed", "Captain Bao"]
    assert [s.name for s in await store.usable(SLACK)] == ["Slacky"]
    saved = (await store.usable(GROUP))[0]
    assert (saved.scope, saved.owner, saved.chat, saved.revision) == (CharacterScope.GROUP, "7", GROUP.chat, 1)
    assert saved.character == named("Mochi") and saved.prompt_tokens == prompt_tokens(MOCHI)
    bao = await store.find(OTHER_GROUP, "captain bao")
    assert bao is not None and (bao.scope, bao.chat) == (CharacterScope.WORKSPACE, "")


async def test_names_are_unique_per_place_whatever_their_case(db: Database) -> None:
    store = CharacterStore(db)
    await store.create(GROUP, CharacterScope.GROUP, "7", named("Mochi"))
    for clash in ("mochi", "MOCHI", "Ｍｏｃｈｉ"):  # full-width letters too (NFKC)
        with pytest.raises(NameTaken, match="already a character called"):
            await store.create(GROUP, CharacterScope.GROUP, "9", named(clash))
    await store.create(OTHER_GROUP, CharacterScope.GROUP, "9", named("mochi"))  # another chat: fine
    # A workspace character of the same name is shadowed in the chat that has its own.
    await store.create(GROUP, CharacterScope.WORKSPACE, "1", named("MOCHI", identity="the workspace one"))
    assert [s.character.identity for s in await store.usable(GROUP)] == [MOCHI.identity]
    found = await store.find(GROUP, "Mochi")
    assert found is not None and found.scope is CharacterScope.GROUP
    found = await store.find(DM, "Mochi")
    assert found is not None and found.character.identity == "the workspace one"
    assert await store.find(DM, "nobody") is None


async def test_edits_bump_the_revision_and_never_overwrite_each_other(db: Database) -> None:
    store = CharacterStore(db)
    saved = await store.create(GROUP, CharacterScope.GROUP, "7", named("Mochi"))
    await store.create(GROUP, CharacterScope.GROUP, "7", named("Bao"))
    edited = await store.update(saved.id, replace(saved.character, personality="grumpy"), revision=1)
    assert (edited.revision, edited.character.personality) == (2, "grumpy")
    assert edited.updated_at >= saved.updated_at
    with pytest.raises(StaleEdit, match="changed by someone else"):
        await store.update(saved.id, replace(saved.character, personality="sunny"), revision=1)
    with pytest.raises(NameTaken):
        await store.update(saved.id, replace(edited.character, name="bao"))
    renamed = await store.update(saved.id, replace(edited.character, name="Mochi II"))
    assert renamed.revision == 3 and await store.find(GROUP, "mochi ii") is not None
    assert await store.find(GROUP, "Mochi") is None
    await store.delete(saved.id)
    with pytest.raises(CharacterError, match="no longer exists"):
        await store.update(saved.id, edited.character)


async def test_concurrent_creates_of_one_name_leave_exactly_one(db: Database) -> None:
    store = CharacterStore(db)
    results = await asyncio.gather(
        *(store.create(GROUP, CharacterScope.GROUP, str(i), named("Mochi" if i % 2 else "MOCHI")) for i in range(8)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, NameTaken) for r in results if isinstance(r, Exception))
    assert len(await store.usable(GROUP)) == 1


async def test_the_active_character_survives_new_and_goes_with_off_or_delete(db: Database) -> None:
    store, chars = Store(db), CharacterStore(db)
    conv = await store.conversation(GROUP, shared=True)
    assert conv is not None and conv.character_id is None
    mochi = await chars.create(GROUP, CharacterScope.GROUP, "7", named("Mochi"))
    await chars.set_active(conv.id, mochi.id)
    assert (await store.conversation(GROUP)).character_id == mochi.id  # type: ignore[union-attr]
    renewed = await store.new_epoch(GROUP)  # /new
    assert renewed.id != conv.id and renewed.character_id == mochi.id
    active = await chars.active(renewed.id)
    assert active is not None and active.character == mochi.character
    again = await store.new_epoch(GROUP)
    assert (await chars.active(again.id)).name == "Mochi"  # type: ignore[union-attr]
    await chars.set_active(again.id, None)  # /character off
    assert await chars.active(again.id) is None and (await store.new_epoch(GROUP)).character_id is None
    latest = await store.conversation(GROUP)
    await chars.set_active(latest.id, mochi.id)  # type: ignore[union-attr]
    assert await chars.delete(mochi.id) and not await chars.delete(mochi.id)
    assert await chars.active(latest.id) is None  # type: ignore[union-attr]
    assert (await store.conversation(GROUP)).character_id is None  # type: ignore[union-attr]
    assert (await store.conversation_by_id(renewed.id)).character_id is None  # type: ignore[union-attr]


async def test_the_avatar_is_stored_apart_from_listings(db: Database) -> None:
    chars = CharacterStore(db)
    picture = b"\x89PNG fake avatar bytes"
    saved = await chars.create(GROUP, CharacterScope.GROUP, "7", named("Mochi"), avatar=picture)
    plain = await chars.create(GROUP, CharacterScope.GROUP, "7", named("Bao"))
    assert saved.has_avatar and not plain.has_avatar
    assert await chars.avatar(saved.id) == picture and await chars.avatar(plain.id) is None
    await chars.update(saved.id, replace(saved.character, personality="x"))  # keeps the picture
    assert await chars.avatar(saved.id) == picture
    assert [s.name for s in await chars.everything()] == ["Mochi", "Bao"]  # newest edit first
    assert [s.name for s in await chars.everything(platform="slack")] == []


async def test_a_large_chinese_card_round_trips_through_the_json_column(db: Database) -> None:
    from bot.characters.cards import read_card
    from tests.test_characters_cards import raw

    character = read_card(raw("mascot_zh_v3.json")).character
    chars = CharacterStore(db)
    saved = await chars.create(GROUP, CharacterScope.WORKSPACE, "1", character)
    loaded = await chars.get(saved.id)
    assert loaded is not None and loaded.character == character


def test_the_migration_adds_and_removes_characters_without_touching_messages(empty_database_url: str) -> None:
    url = empty_database_url
    upgrade(url, "0004_usage_quotas")

    async def seed() -> None:
        db = Database(url)
        async with db.write() as conn:
            cid = (
                await conn.execute(
                    insert(Conversation)
                    .values(
                        platform="console",
                        workspace="local",
                        chat="c",
                        thread="",
                        epoch=0,
                        next_seq=1,
                        history_start=0,
                        token_ratio=1.0,
                        shared=False,
                    )
                    .returning(Conversation.id)
                )
            ).scalar_one()
            await conn.execute(insert(Message).values(conversation_id=cid, seq=0, role="user", status="answered"))
        await db.dispose()

    async def messages() -> int:
        db = Database(url)
        async with db.read() as conn:
            count = (await conn.execute(select(func.count()).select_from(Message))).scalar_one()
        await db.dispose()
        return count

    asyncio.run(seed())
    upgrade(url)
    assert asyncio.run(messages()) == 1
    downgrade(url, "0004_usage_quotas")  # on SQLite a table copy of conversations would cascade here
    assert asyncio.run(messages()) == 1
    upgrade(url)
    assert asyncio.run(messages()) == 1
