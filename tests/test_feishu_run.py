"""`bot run` with Feishu configured, as a real process: the plug-in is found through its entry
point, the long connection opens, /readyz waits for it, a message is answered, SIGTERM ends it
cleanly, and the app secret never reaches the log."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.fakes.feishu_api import FakeFeishu
from tests.fakes.gateway import Answer
from tests.polling import eventually
from tests.processes import free_port, run_env, start_bot, terminate, wait_healthz


async def test_bot_run_starts_feishu_when_it_is_configured(fake_gateway, database_url: str, tmp_path: Path) -> None:
    fake_gateway.default = lambda body: Answer(text="飞书上线了。", reasoning="greet")
    async with FakeFeishu(app_secret="fake-secret-that-must-not-be-logged") as fake:
        port = free_port()
        env = run_env(
            fake_gateway.base_url,
            database_url,
            port,
            FEISHU_APP_ID=fake.app_id,
            FEISHU_APP_SECRET=fake.app_secret,
            FEISHU_DOMAIN=fake.base_url,
        )
        proc = await start_bot("run", env=env, cwd=tmp_path)
        try:
            health = await wait_healthz(port, timeout=60)
            assert health["platforms"] == ["feishu"]
            async with httpx.AsyncClient() as client:

                async def ready() -> bool:  # once the bot knows who it is and the connection is open
                    return (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200

                await eventually(ready, 60, every=0.1, what="/readyz 200")
            assert len(fake.ws.live) == 1
            alice = fake.user("Alice")
            chat = fake.p2p_chat(alice)
            _, event = fake.events.text(chat, alice, "你好")
            assert (await fake.push_event(event)).acked
            try:
                await eventually(lambda: any(m.text == "飞书上线了。" for m in fake.bot_messages(chat.chat_id)), 30)
                answered = True
            except AssertionError:
                answered = False
        finally:
            err = await terminate(proc)
        assert answered, (err[-3000:], [c.api for c in fake.calls])
        assert fake.cards_left_generating() == []
        assert proc.returncode == 0, err[-2000:]
        assert fake.app_secret not in err
        assert fake.ws.live == []
