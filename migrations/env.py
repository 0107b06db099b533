"""Alembic environment: runs revisions on the async engine the bot itself uses."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from bot.store.db import make_engine
from bot.store.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    if not url:
        from bot.config import load_settings

        url = load_settings(require_api_key=False).database_url
    return url


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    dangling_before: set = set()
    if sqlite:
        # SQLite alters a table by copying it and dropping the old one; with foreign keys on,
        # that drop cascades to every row that refers to it (a downgrade of 0003 emptied
        # messages and parts). The pragma only takes effect outside a transaction: here,
        # before the first statement of the migration.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        dangling_before = set(connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall())
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,  # SQLite alters by copy
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    if sqlite:
        # Only what this run left dangling fails it: rows an older copy already had must not
        # stop the bot from starting.
        broken = set(connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()) - dangling_before
        if broken:
            gone = sorted(broken)[:5]
            raise RuntimeError(f"migration left {len(broken)} row(s) pointing at rows that are gone: {gone}")
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")


async def _run_async() -> None:
    engine = make_engine(_url())
    async with engine.connect() as conn:
        await conn.run_sync(_run)
        await conn.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async())
