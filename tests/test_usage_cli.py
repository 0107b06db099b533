"""`bot usage` and `bot admin` run as real processes against a seeded database."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sys

from sqlalchemy import select

from bot.admin.auth import verify_password
from bot.store.db import Database
from bot.store.models import AdminSetting
from bot.store.usage import CallRow, UsageStore
from tests.processes import ROOT, bot_env


def row(day: str, user: str, conv: int, prompt: int, cached: int, completion: int, cost: float, turn: int) -> CallRow:
    return CallRow(
        turn_id=turn,
        conversation_id=conv,
        platform="slack",
        user_id=user,
        kind="chat",
        model="m",
        day=day,
        prompt_tokens=prompt,
        cached_tokens=cached,
        completion_tokens=completion,
        cost=cost,
        ttft_ms=100,
        duration_ms=500,
        outcome="ok",
    )


async def seed(url: str) -> None:
    db = Database(url)
    store = UsageStore(db)
    try:
        for call in (
            row("2026-11-20", "U1", 1, 1000, 200, 100, 0.01, 1),
            row("2026-11-20", "U1", 1, 500, 0, 50, 0.005, 1),
            row("2026-11-20", "U2", 2, 300, 0, 30, 0.002, 2),
            row("2026-11-21", "U1", 1, 700, 700, 70, 0.003, 3),
        ):
            await store.record_call(call, [])
    finally:
        await db.dispose()


async def bot(*args: str, url: str, stdin: bytes = b"", **env: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=ROOT,
        env=bot_env(DATABASE_URL=url, **env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_bot_usage_as_json_csv_and_table(database_url: str) -> None:
    await seed(database_url)
    span = ("--since", "2026-11-20", "--until", "2026-11-21")
    code, out, err = await bot("usage", *span, "--format", "json", url=database_url)
    assert code == 0, err
    data = json.loads(out)
    assert data["currency"] == "USD"
    assert [
        (r["day"], r["user"], r["conversation"], r["turns"], r["calls"], r["prompt_tokens"], r["cost"])
        for r in data["rows"]
    ] == [
        ("2026-11-20", "U1", 1, 1, 2, 1500, 0.015),
        ("2026-11-20", "U2", 2, 1, 1, 300, 0.002),
        ("2026-11-21", "U1", 1, 1, 1, 700, 0.003),
    ]
    code, out, _ = await bot("usage", *span, "--format", "csv", "--user", "U1", url=database_url)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0
    assert [(r["day"], r["completion_tokens"]) for r in rows] == [("2026-11-20", "150"), ("2026-11-21", "70")]
    assert [r["cost"] for r in rows] == ["0.0150", "0.0030"]  # as the table shows cost
    code, out, _ = await bot("usage", *span, url=database_url, BOT_CURRENCY="EUR")
    lines = out.splitlines()
    assert code == 0 and "cost (EUR)" in lines[0]
    assert lines[-1].split() == ["total", "3", "4", "2,500", "900", "250", "0.0200"]
    code, _, err = await bot("usage", "--since", "yesterday", url=database_url)
    assert code == 2 and "bad date" in err


async def test_admin_set_password_stores_only_a_hash(database_url: str) -> None:
    code, out, err = await bot("admin", "set-password", "--stdin", url=database_url, stdin=b"a long enough password\n")
    assert code == 0, err
    assert "a long enough password" not in out + err
    db = Database(database_url)
    try:
        async with db.read() as conn:
            stored = (
                await conn.execute(select(AdminSetting.value).where(AdminSetting.key == "admin_password_hash"))
            ).scalar()
    finally:
        await db.dispose()
    assert stored.startswith("$argon2id$") and verify_password(stored, "a long enough password")
    code, _, err = await bot("admin", "set-password", "--stdin", url=database_url, stdin=b"short\n")
    assert code == 1 and "at least 12 characters" in err
    code, out, _ = await bot("admin", "hash-password", "--stdin", url=database_url, stdin=b"another long password\n")
    assert code == 0 and verify_password(out.strip(), "another long password")


async def test_bare_admin_prints_its_help_and_unused_days_cost_alike(database_url: str) -> None:
    code, out, err = await bot("admin", url=database_url)
    assert code == 0, err
    assert "set-password" in out and "hash-password" in out and "required" not in out + err
    code, out, _ = await bot(
        "usage", "--since", "2026-11-20", "--until", "2026-11-21", "--format", "csv", url=database_url
    )
    assert code == 0 and out.splitlines()[1:] == []  # no rows: only the header
    await seed(database_url)
    code, out, _ = await bot(
        "usage", "--since", "2026-11-20", "--until", "2026-11-20", "--format", "json", "--user", "U2", url=database_url
    )
    assert code == 0 and [r["cost"] for r in json.loads(out)["rows"]] == [0.002]


def test_no_platform_message_names_what_is_served_and_how_to_configure(make_settings) -> None:
    from bot.process.serve import no_platform_message

    text = no_platform_message(make_settings(BOT_ADMIN_PAGE=False, PORT=8123))
    assert "/healthz, /readyz and /metrics on" in text and "/admin" not in text and ":8123" in text
    assert "TELEGRAM_*" in text and "SLACK_*" in text and "bot chat" in text
    assert "/admin on" in no_platform_message(make_settings())
