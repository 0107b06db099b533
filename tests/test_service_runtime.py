"""The service as a whole: many chats at once, durable dedupe, `bot run` and /healthz."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import httpx

from bot.messages import Author, ConversationKey, IncomingMessage
from bot.runtime import build_runtime
from tests.fakes.gateway import Answer
from tests.surfaces import RecordingSurface

ROOT = Path(__file__).resolve().parent.parent


async def test_many_chats_at_once_all_answered_without_database_errors(service, fake_gateway, caplog) -> None:
    fake_gateway.default = lambda body: Answer(text="answer " * 40, reasoning="r", chunk_size=6, chunk_delay=0.001)
    surfaces = [RecordingSurface() for _ in range(40)]
    await asyncio.gather(*[
        service.handle(IncomingMessage(key=ConversationKey("telegram", "bot", str(i)), author=Author(str(i), f"U{i}"),
                                       text=f"hello {i}"), surfaces[i])
        for i in range(40)])
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_bot_run_serves_healthz_and_stops_cleanly(fake_gateway, database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BYTESPIKE_", "BOT_", "TELEGRAM_", "SLACK_", "DATABASE_URL"))}
    env.update(PYTHONPATH=str(ROOT), BYTESPIKE_API_KEY="test-key", BYTESPIKE_BASE_URL=fake_gateway.base_url,
               DATABASE_URL=database_url, PORT=str(port), HOST="127.0.0.1")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                try:
                    response = await client.get(f"http://127.0.0.1:{port}/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("bot run never listened")
        assert response.status_code == 200 and response.json()["status"] == "ok"
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=20)
        assert proc.returncode == 0, err.decode()
        assert "test-key" not in err.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
