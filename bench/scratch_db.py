"""Scratch PostgreSQL databases for one benchmark run: created fresh, dropped after."""

from __future__ import annotations

import os
import uuid

import asyncpg

PG_ADMIN_URL = (
    os.environ.get("BENCH_POSTGRES_URL")
    or os.environ.get("TEST_DATABASE_URL")
    or "postgresql://postgres@127.0.0.1:5432/test"
)


def admin_url(url: str = PG_ADMIN_URL) -> str:
    """The URL as asyncpg takes it (no SQLAlchemy driver suffix)."""
    return url.replace("postgresql+asyncpg://", "postgresql://").replace("postgres://", "postgresql://")


async def reachable() -> bool:
    try:
        conn = await asyncpg.connect(admin_url(), timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


async def create(prefix: str) -> tuple[str, str]:
    """A new database: (its name, its SQLAlchemy URL)."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(admin_url())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = admin_url().rsplit("/", 1)[0]
    return name, f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://")


async def drop(name: str) -> None:
    conn = await asyncpg.connect(admin_url())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
