"""`bot run` as a real process: every configured platform and the web app in one loop."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.fakes.gateway import Answer
from tests.fakes.slack_api import BOT_TOKEN, BOT_USER_ID, SIGNING_SECRET, FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.polling import eventually
from tests.processes import free_port, run_env, start_bot, terminate, wait_healthz

ALICE = {"id": 501, "is_bot": False, "first_name": "Alice"}


async def test_bot_run_answers_telegram_and_slack_in_one_process(
    fake_gateway, database_url: str, tmp_path: Path
) -> None:
    def answer(body: dict) -> Answer:
        asked = str(body["messages"][-1]["content"])
        return Answer(text="Hi Alice, the bot is running." if "hello" in asked else "Slack says hi.", reasoning="greet")

    fake_gateway.default = answer
    fake_slack = await FakeSlack().start()
    async with FakeTelegram() as tg:
        tg.add_chat(ALICE["id"], "private", user=ALICE)
        port = free_port()
        env = run_env(
            fake_gateway.base_url,
            database_url,
            port,
            TELEGRAM_BOT_TOKEN=tg.token,
            TELEGRAM_API_URL=tg.api_url,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=fake_slack.api_url,
        )
        proc = await start_bot("run", env=env, cwd=tmp_path)
        try:
            health = await wait_healthz(port)
            assert sorted(health["platforms"]) == ["slack", "telegram"]
            # Slack over HTTP events on the same web app, signed like Slack signs them.
            ts, envelope = fake_slack.user_message("C0GENERAL1", f"<@{BOT_USER_ID}> hi there", mention=True)
            body = json.dumps(envelope).encode()
            async with httpx.AsyncClient() as client:

                async def delivered() -> httpx.Response | None:
                    response = await client.post(
                        f"http://127.0.0.1:{port}/slack/events", content=body, headers=fake_slack.signed(body)
                    )
                    # 503 until the Slack adapter has connected: Slack retries those.
                    return None if response.status_code == 503 else response

                response = await eventually(delivered, 10, every=0.1)
            assert response.status_code == 200
            tg.send_user_message(ALICE["id"], ALICE, "hello")
            greeting = "Hi Alice, the bot is running."
            await eventually(lambda: any(m.text == greeting for m in tg.bot_messages(ALICE["id"])), 20)
            assert tg.commands, "commands were registered with setMyCommands"
            await eventually(
                lambda: any("Slack says hi." in (m.text or "") for m in fake_slack.bot_replies("C0GENERAL1", ts)), 20
            )
            # ⋯ → Check copy on a teammate's draft: the verdict for the picker alone, in its thread.
            draft = "全网最低价，只有今天！"
            draft_ts, _ = fake_slack.user_message("C0GENERAL1", draft, user="U0BOB0001", thread_ts=ts)
            picked = fake_slack.message_shortcut(fake_slack.messages[("C0GENERAL1", draft_ts)], "cmd_check")
            form = fake_slack.form_body(picked)
            async with httpx.AsyncClient() as client:
                shortcut = await client.post(
                    f"http://127.0.0.1:{port}/slack/events",
                    content=form,
                    headers=fake_slack.signed(form, content_type="application/x-www-form-urlencoded"),
                )
            assert shortcut.status_code == 200
            [verdict] = await eventually(lambda: fake_slack.ephemerals_for("U0ALICE01", "C0GENERAL1"), 20)
            assert "「全网最低价」" in verdict.text and verdict.thread_ts == ts
        finally:
            err = await terminate(proc)
        assert proc.returncode == 0, err[-2000:]
        assert tg.token.split(":")[1] not in err  # the tokens never reach the log
        assert BOT_TOKEN not in err and SIGNING_SECRET not in err
    await fake_slack.close()
