"""Quota counters add up exactly under concurrent charges, from several processes too."""

from __future__ import annotations

import asyncio
import sys
import textwrap

from bot.store.db import Database
from bot.store.usage import CallRow, CounterKey, UsageStore
from tests.processes import ROOT, bot_env

KEYS = [CounterKey("user", "telegram:42", "day", "2026-12-01"), CounterKey("global", "", "month", "2026-12")]


def call(cost: float = 0.25) -> CallRow:
    return CallRow(
        turn_id=None,
        conversation_id=None,
        platform="telegram",
        user_id="42",
        kind="chat",
        model="m",
        day="2026-12-01",
        prompt_tokens=7,
        cached_tokens=0,
        completion_tokens=3,
        cost=cost,
        ttft_ms=1,
        duration_ms=2,
        outcome="ok",
    )


async def test_concurrent_charges_in_one_process(database_url: str) -> None:
    # Several engines (each with its own pool) charge at once, as several workers would.
    dbs = [Database(database_url) for _ in range(3)]
    try:
        await asyncio.gather(*(UsageStore(dbs[i % 3]).record_call(call(), KEYS) for i in range(60)))
        totals = await UsageStore(dbs[0]).totals(KEYS)
    finally:
        for db in dbs:
            await db.dispose()
    assert {k.scope: (t.tokens, t.calls, round(t.cost, 6)) for k, t in totals.items()} == {
        "user": (600, 60, 15.0),
        "global": (600, 60, 15.0),
    }


CHARGER = textwrap.dedent("""
    import asyncio, sys
    from bot.store.db import Database
    from bot.store.usage import UsageStore
    from tests.test_usage_counting import KEYS, call

    async def main(url, n):
        db = Database(url)
        store = UsageStore(db)
        await asyncio.gather(*(store.record_call(call(0.5), KEYS) for _ in range(n)))
        await db.dispose()

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
""")


async def test_concurrent_charges_from_several_processes(database_url: str) -> None:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", CHARGER, database_url, "25", cwd=ROOT, env=bot_env(), stderr=asyncio.subprocess.PIPE
        )
        for _ in range(3)
    ]
    results = await asyncio.gather(*(p.communicate() for p in procs))
    assert [p.returncode for p in procs] == [0, 0, 0], [r[1].decode()[-800:] for r in results]
    db = Database(database_url)
    try:
        totals = await UsageStore(db).totals(KEYS)
    finally:
        await db.dispose()
    assert {k.scope: (t.tokens, t.calls, round(t.cost, 6)) for k, t in totals.items()} == {
        "user": (750, 75, 37.5),
        "global": (750, 75, 37.5),
    }


def test_the_stored_vocabularies_are_the_enums_values() -> None:
    """The store writes its scopes and periods out as Literals of the stored strings
    (the enums live above it: quotas and the core import the store): a new member of an enum
    must be added to its Literal too."""
    from typing import get_args

    from bot.core.turns import TurnKind
    from bot.store.usage import CallKind, QuotaPeriod, QuotaScope
    from bot.usage.periods import Period
    from bot.usage.quotas import Scope

    for literal, enum in ((QuotaScope, Scope), (QuotaPeriod, Period)):
        assert set(get_args(literal)) == {member.value for member in enum}, enum.__name__
    # Kinds of turns are open (features register theirs): the ledger stores the kind's name.
    assert CallKind is str and TurnKind.CHAT == "chat"


def test_the_metrics_outcomes_are_the_final_turn_states() -> None:
    """Metrics sit below the core (the core reports to them), so they name the outcomes as
    strings; they must stay the final TurnState values."""
    from bot.core.turns import TurnState
    from bot.process.metrics import DONE, OUTCOMES

    assert set(OUTCOMES) == {s.value for s in TurnState} - {TurnState.QUEUED.value, TurnState.STREAMING.value}
    assert DONE == TurnState.DONE.value
