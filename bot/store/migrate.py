"""Run Alembic from code (``bot migrate``, tests) without an alembic.ini on disk.

Alembic (with Mako and Pygments) costs a process about 8 MB resident. A database already at
the migrations' head — every start but the first after an upgrade — needs none of it: the
head is read from the migration files and the current revision with one SELECT, and
Alembic is imported only when there is something to do (function-level imports: Alembic's
env.py imports nothing of ours back)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.ext.asyncio import AsyncConnection

MIGRATIONS = Path(__file__).resolve().parent.parent.parent / "migrations"
_REVISION = re.compile(r"""^revision(?:\s*:\s*str)?\s*=\s*["']([^"']+)["']\s*$""", re.M)
_DOWN_REVISION = re.compile(r"""^down_revision(?:\s*:[^=]+)?\s*=\s*(?:None|["']([^"']+)["'])\s*$""", re.M)


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(database_url), revision)


def script_heads() -> set[str] | None:
    """The head revisions of ``migrations/versions``, read from the files' ``revision`` and
    ``down_revision`` lines; None when a file does not read plainly (a merge, say)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        if path.name == "__init__.py":
            continue
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.findall(source), _DOWN_REVISION.findall(source)
        if len(revision) != 1 or len(down) != 1:
            return None
        revisions.add(revision[0])
        if down[0]:
            parents.add(down[0])
    heads = revisions - parents
    return heads if len(heads) == 1 else None


def heads(database_url: str) -> set[str]:
    """The revisions the code's migrations end at."""
    found = script_heads()
    if found is not None:
        return found
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config(database_url)).get_heads())


async def current_heads(conn: AsyncConnection) -> set[str]:
    """The database's revisions (empty: never migrated), as Alembic's MigrationContext reads them."""
    try:
        rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
    except Exception:  # noqa: BLE001 - no table yet
        return set()
    return {row[0] for row in rows}


async def _at_head(database_url: str) -> bool:
    wanted = script_heads()
    if wanted is None:
        return False
    from bot.store.db import make_engine  # db imports nothing from here

    engine: Any = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            return await current_heads(conn) == wanted
    except Exception:  # noqa: BLE001 - let Alembic try, and say what is wrong
        return False
    finally:
        await engine.dispose()


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    if revision == "head" and await _at_head(database_url):
        return
    # env.py runs its own event loop, so keep it off ours.
    await asyncio.to_thread(upgrade, database_url, revision)
