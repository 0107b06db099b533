"""`bot run` as a real process: every configured platform and the web app in one loop."""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import httpx

from tests.fakes.gateway import Answer
from tests.fakes.telegram_api import FakeTelegram
from tests.test_service_runtime import free_port

ROOT = Path(__file__).resolve().parent.parent
ALICE = {"id": 501, "is_bot": False, "first_name": "Alice"}


async def test_bot_run_answers_telegram_by_long_polling(fake_gateway, database_url: str, tmp_path: Path) -> None:
    fake_gateway.script(Answer(text="Hi Alice, the bot is running.", reasoning="greet"))
    async with FakeTelegram() as tg:
        tg.add_chat(ALICE["id"], "private", user=ALICE)
        port = free_port()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("BYTESPIKE_", "BOT_", "TELEGRAM_", "SLACK_", "DATABASE_URL"))}
        env.update(PYTHONPATH=str(ROOT), BYTESPIKE_API_KEY="test-key", BYTESPIKE_BASE_URL=fake_gateway.base_url,
                   DATABASE_URL=database_url, PORT=str(port), HOST="127.0.0.1",
                   TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.api_url)
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            async with httpx.AsyncClient() as client:
                for _ in range(150):
                    try:
                        health = (await client.get(f"http://127.0.0.1:{port}/healthz")).json()
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)
                else:
                    raise AssertionError("bot run never listened")
            assert health["platforms"] == ["telegram"]
            tg.send_user_message(ALICE["id"], ALICE, "hello")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if any(m.text == "Hi Alice, the bot is running." for m in tg.bot_messages(ALICE["id"])):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"no answer: {[m.text for m in tg.bot_messages(ALICE['id'])]}")
            assert tg.commands, "commands were registered with setMyCommands"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                _, err = await asyncio.wait_for(proc.communicate(), timeout=20)
            except TimeoutError:
                proc.kill()
                _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()[-2000:]
        assert tg.token.split(":")[1] not in err.decode()  # the token never reaches the log
