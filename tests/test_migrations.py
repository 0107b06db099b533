"""Migrations: upgrade from empty, downgrade to base, and the ORM equal to the result."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from bot.store.db import make_engine
from bot.store.migrate import downgrade, upgrade
from bot.store.models import Base


async def _inspect(url: str):
    engine = make_engine(url)
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        diff = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata)
        )
    await engine.dispose()
    return tables, diff


def test_upgrade_downgrade_and_metadata_match(empty_database_url: str) -> None:
    url = empty_database_url
    upgrade(url)
    tables, diff = asyncio.run(_inspect(url))
    assert {"conversations", "messages", "parts", "attachments", "turns", "inbound_events"} <= tables
    assert diff == [], diff
    downgrade(url, "base")
    tables, _ = asyncio.run(_inspect(url))
    assert tables <= {"alembic_version"}
    upgrade(url)  # and up again: migrations are repeatable


def test_revision_ids_fit_alembic_version_column() -> None:
    from alembic.script import ScriptDirectory

    from bot.store.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    revisions = list(script.walk_revisions())
    assert revisions and all(len(r.revision) <= 32 for r in revisions)
    assert revisions[-1].revision.startswith("0001")


def test_downgrading_past_a_table_copy_keeps_every_message(empty_database_url: str) -> None:
    """SQLite alters a table by copying it; with foreign keys on, dropping the old
    ``conversations`` would cascade to every message and part. A downgrade that undoes a
    column (0003's ``left_at``) must leave the conversations, messages and parts as they were."""
    from sqlalchemy import func, insert, select

    from bot.store.db import Database
    from bot.store.models import Conversation, Message, Part

    url = empty_database_url
    upgrade(url, "0003_chat_left")

    async def seed() -> None:
        db = Database(url)
        async with db.write() as conn:
            values = dict(platform="console", workspace="local", chat="c", thread="", epoch=0, next_seq=2)
            values |= dict(history_start=0, token_ratio=1.0, shared=False)
            cid = (await conn.execute(insert(Conversation).values(**values).returning(Conversation.id))).scalar_one()
            for seq, role in enumerate(("user", "assistant")):
                mid = (
                    await conn.execute(
                        insert(Message)
                        .values(conversation_id=cid, seq=seq, role=role, status="answered")
                        .returning(Message.id)
                    )
                ).scalar_one()
                await conn.execute(insert(Part).values(message_id=mid, idx=0, kind="text", text=f"{role} words"))
        await db.dispose()

    async def counts() -> tuple[int, int, int]:
        db = Database(url)
        async with db.read() as conn:
            found = [
                (await conn.execute(select(func.count()).select_from(table))).scalar_one()
                for table in (Conversation, Message, Part)
            ]
        await db.dispose()
        return found[0], found[1], found[2]

    asyncio.run(seed())
    assert asyncio.run(counts()) == (1, 2, 2)
    downgrade(url, "0002_turn_pages")
    assert asyncio.run(counts()) == (1, 2, 2)
    upgrade(url)
    assert asyncio.run(counts()) == (1, 2, 2)


def test_rows_an_older_sqlite_file_left_dangling_do_not_stop_an_upgrade(tmp_path) -> None:
    """The check after a run fails only on what that run left dangling: a file that already
    had an orphan (written with foreign keys off by another tool) still upgrades."""
    import sqlite3

    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"  # a SQLite file in either run: PostgreSQL has no orphans
    upgrade(url, "0002_turn_pages")
    with sqlite3.connect(tmp_path / "old.db") as raw:  # foreign keys are off by default here
        raw.execute(
            "INSERT INTO messages (conversation_id, seq, role, author_id, author_name, platform_message_id, status,"
            " created_at) VALUES (999, 0, 'user', 'u', 'U', 'm', 'answered', '2026-01-01 00:00:00')"
        )
    upgrade(url)
    with sqlite3.connect(tmp_path / "old.db") as raw:
        assert raw.execute("SELECT count(*) FROM messages WHERE conversation_id = 999").fetchone() == (1,)
