"""`bot run` as a real process: every configured platform and the web app in one loop."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.fakes.gateway import Answer
from tests.fakes.telegram_api import FakeTelegram
from tests.processes import bot_env, free_port, start_bot, terminate, wait_healthz
ALICE = {"id": 501, "is_bot": False, "first_name": "Alice"}


async def test_bot_run_answers_telegram_by_long_polling(fake_gateway, database_url: str, tmp_path: Path) -> None:
    fake_gateway.script(Answer(text="Hi Alice, the bot is running.", reasoning="greet"))
    async with FakeTelegram() as tg:
        tg.add_chat(ALICE["id"], "private", user=ALICE)
        port = free_port()
        env = bot_env(BYTESPIKE_API_KEY="test-key", BYTESPIKE_BASE_URL=fake_gateway.base_url,
                      DATABASE_URL=database_url, PORT=str(port), HOST="127.0.0.1",
                      TELEGRAM_BOT_TOKEN=tg.token, TELEGRAM_API_URL=tg.api_url)
        proc = await start_bot("run", env=env, cwd=tmp_path)
        try:
            health = await wait_healthz(port)
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
            err = await terminate(proc)
        assert proc.returncode == 0, err[-2000:]
        assert tg.token.split(":")[1] not in err  # the token never reaches the log
