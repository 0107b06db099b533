"""The service as a whole: many chats at once, durable dedupe, `bot run` and /healthz."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.platform.messages import Author, ConversationKey, IncomingMessage
from bot.process.runtime import build_runtime
from tests.fakes.gateway import Answer
from tests.processes import free_port, run_env, start_bot, terminate, wait_healthz
from tests.surfaces import RecordingSurface


async def test_many_chats_at_once_all_answered_without_database_errors(service, fake_gateway, caplog) -> None:
    fake_gateway.default = lambda body: Answer(text="answer " * 40, reasoning="r", chunk_size=6, chunk_delay=0.001)
    surfaces = [RecordingSurface() for _ in range(40)]
    await asyncio.gather(
        *[
            service.handle(
                IncomingMessage(
                    key=ConversationKey("telegram", "bot", str(i)), author=Author(str(i), f"U{i}"), text=f"hello {i}"
                ),
                surfaces[i],
            )
            for i in range(40)
        ]
    )
    assert all(s.texts == [("answer " * 40).strip()] for s in surfaces)
    assert "database is locked" not in caplog.text
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_event_dedupe_survives_a_restart(settings) -> None:
    rt = await build_runtime(settings, migrate=False)
    try:
        assert await rt.service.claim_event("slack", "Ev123")
        assert not await rt.service.claim_event("slack", "Ev123")
        assert await rt.service.claim_event("telegram", "Ev123")  # per platform
    finally:
        await rt.close()
    rt = await build_runtime(settings, migrate=False)
    try:
        assert not await rt.service.claim_event("slack", "Ev123")
    finally:
        await rt.close()


async def test_bot_run_serves_healthz_and_stops_cleanly(fake_gateway, database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = run_env(
        fake_gateway.base_url,
        database_url,
        port,
    )
    proc = await start_bot("run", env=env, cwd=tmp_path)
    try:
        health = await wait_healthz(port)
        assert health["status"] == "ok" and health["platforms"] == []
    finally:
        err = await terminate(proc)
    assert proc.returncode == 0, err
    assert "test-key" not in err


async def test_old_event_ids_are_pruned_at_start(settings) -> None:
    from datetime import timedelta

    rt = await build_runtime(settings, migrate=False)
    try:
        assert await rt.service.claim_event("slack", "EvOld")
        assert await rt.store.prune_events(timedelta(days=7)) == 0  # a fresh id is kept
        assert await rt.store.prune_events(timedelta(seconds=-1)) == 1
        assert await rt.service.claim_event("slack", "EvOld")  # forgotten once pruned
    finally:
        await rt.close()
