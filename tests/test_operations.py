"""Operating `bot run` as a real process against the fakes: readiness, metrics, JSON logs
with no secrets in them, and a SIGTERM that lets answers finish."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from bot.core.texts import SHUTDOWN_MARKER
from bot.store.db import make_engine
from tests.fakes.gateway import Answer, FakeGateway
from tests.fakes.slack_api import APP_TOKEN, BOT_TOKEN, BOT_USER_ID, SIGNING_SECRET, FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.polling import eventually
from tests.processes import free_port, run_env, start_bot, terminate, wait_healthz

ALICE = {"id": 501, "is_bot": False, "first_name": "Alice"}
METRICS_TOKEN = "metrics-token-5f1e9a"
FAST = {"BOT_RETRY_BASE_DELAY": "0.01", "BOT_RETRY_MAX_DELAY": "0.05", "BOT_CONNECT_TIMEOUT": "2"}


def _samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def _metrics(client: httpx.AsyncClient, port: int) -> dict:
    response = await client.get(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    assert response.status_code == 200
    return _samples(response.text)


def _final_texts(tg: FakeTelegram, chat_id: int) -> list[str]:
    return [m.text for m in tg.bot_messages(chat_id)]


async def test_readiness_and_metrics_tell_the_operator_what_is_wrong(database_url: str, tmp_path: Path) -> None:
    gateway = await FakeGateway().start()
    gateway.script(
        Answer(text="Hello Alice, nice to meet you.", prompt_tokens=40, completion_tokens=9, cached_tokens=32)
    )
    async with FakeTelegram() as tg:
        tg.add_chat(ALICE["id"], "private", user=ALICE)
        port = free_port()
        env = run_env(
            gateway.base_url,
            database_url,
            port,
            TELEGRAM_BOT_TOKEN=tg.token,
            TELEGRAM_API_URL=tg.api_url,
            METRICS_TOKEN=METRICS_TOKEN,
            BOT_MAX_RETRIES="1",
            **FAST,
        )
        proc = await start_bot("run", env=env, cwd=tmp_path)
        engine = make_engine(database_url)
        try:
            await wait_healthz(port)
            async with httpx.AsyncClient(timeout=10) as client:
                base = f"http://127.0.0.1:{port}"
                await _until_status(client, f"{base}/readyz", 200, timeout=15)
                assert (await client.get(f"{base}/readyz")).json() == {"status": "ready"}

                # /metrics wants the bearer token, and says so.
                assert (await client.get(f"{base}/metrics")).status_code == 401
                wrong = await client.get(f"{base}/metrics", headers={"Authorization": "Bearer nope"})
                assert wrong.status_code == 401

                # One answer, with a 429 on the way: counted, labelled by method, no ids or text.
                tg.inject("sendMessage", retry_after=0.3, chat_id=ALICE["id"])
                tg.send_user_message(ALICE["id"], ALICE, "hello there, my secret plan")
                await eventually(
                    lambda: "Hello Alice, nice to meet you." in _final_texts(tg, ALICE["id"]), 20, what="answer"
                )

                async def turn_counted() -> dict | None:  # the answer's last save, then its metrics
                    samples = await _metrics(client, port)
                    done = _value(samples, "bot_turns_total", outcome="complete") == 1
                    return samples if done and _value(samples, "bot_active_streams") == 0 else None

                samples = await eventually(turn_counted, 10, what="the turn's metrics")
                assert _value(samples, "bot_turns_total", outcome="complete") == 1
                assert _value(samples, "bot_turns_total", outcome="error") == 0
                assert _value(samples, "bot_time_to_first_token_seconds_count") == 1
                assert _value(samples, "bot_added_latency_seconds_count") == 1
                assert _value(samples, "bot_tokens_total", direction="in") == 40
                assert _value(samples, "bot_tokens_total", direction="out") == 9
                assert _value(samples, "bot_tokens_total", direction="cached") == 32
                assert _value(samples, "bot_platform_calls_total", platform="telegram", method="sendMessage") >= 2
                assert (
                    _value(samples, "bot_platform_rate_limited_total", platform="telegram", method="sendMessage") == 1
                )
                assert _value(samples, "bot_active_streams") == 0
                assert _value(samples, "bot_queue_depth") == 0
                labels = {v for (_, pairs) in samples for _, v in pairs}
                assert not any(str(ALICE["id"]) in v or "secret plan" in v for v in labels), labels

                # The schema falls behind the code: not ready, and the body says why.
                async with engine.begin() as conn:
                    head = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
                    await conn.execute(text("UPDATE alembic_version SET version_num = 'older'"))
                try:
                    behind = await client.get(f"{base}/readyz")
                    assert behind.status_code == 503
                    assert "bot migrate" in behind.json()["problems"]["database"]
                finally:
                    async with engine.begin() as conn:
                        await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
                assert (await client.get(f"{base}/readyz")).status_code == 200

                # The gateway goes away: the next answer fails to connect, readiness names it.
                await gateway.stop()
                tg.send_user_message(ALICE["id"], ALICE, "are you there?")
                await eventually(lambda: len(_final_texts(tg, ALICE["id"])) >= 2, 20, what="the failure notice")
                down = await client.get(f"{base}/readyz")
                assert down.status_code == 503
                assert list(down.json()["problems"]) == ["gateway"]
                assert (await client.get(f"{base}/healthz")).status_code == 200  # alive all the same
                samples = await _metrics(client, port)
                assert _value(samples, "bot_gateway_errors_total", kind="network") == 1
                assert _value(samples, "bot_turns_total", outcome="error") == 1
        finally:
            await engine.dispose()
            err = await terminate(proc)
            await gateway.stop()
        assert proc.returncode == 0, err[-3000:]


async def test_sigterm_lets_the_running_answer_finish_and_leaves_the_queue(
    fake_gateway, database_url: str, tmp_path: Path
) -> None:
    answer = " ".join(f"word{i}" for i in range(60)) + " THE END."
    gate = asyncio.Event()  # the answer holds mid-stream until the shutdown checks are done
    fake_gateway.script(Answer(text=answer, chunk_size=8, chunk_delay=0.02, pause_after=6, wait_for=gate))
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
            METRICS_TOKEN=METRICS_TOKEN,
            BOT_SHUTDOWN_GRACE="20",
        )
        proc = await start_bot("run", env=env, cwd=tmp_path)
        try:
            await wait_healthz(port)
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(timeout=10) as client:
                tg.send_user_message(ALICE["id"], ALICE, "tell me a long story")
                await eventually(
                    lambda: bool(tg.calls_to("sendMessageDraft")), 20, what="the answer to start streaming"
                )
                tg.send_user_message(ALICE["id"], ALICE, "and then another one")
                await eventually(lambda: fake_gateway.served + fake_gateway.active >= 1, 20, what="the model call")
                samples = await _metrics(client, port)
                assert _value(samples, "bot_active_streams") == 1

                async def queued() -> bool:
                    return _value(await _metrics(client, port), "bot_queue_depth") == 1

                await eventually(queued, 10, what="the second message queued")

                proc.send_signal(signal.SIGTERM)
                signalled = time.monotonic()
                # Unready at once, and webhooks refused so the platform redelivers elsewhere.
                await _until_status(client, f"{base}/readyz", 503)
                _ts, envelope = fake_slack.user_message("C0GENERAL1", f"<@{BOT_USER_ID}> hi", mention=True)
                body = json.dumps(envelope).encode()
                refused = await client.post(f"{base}/slack/events", content=body, headers=fake_slack.signed(body))
                assert refused.status_code == 503
                assert "shutting down" in json.dumps((await client.get(f"{base}/readyz")).json())
                # Polling has stopped: readiness names the platform too.

                async def polling_stopped() -> bool:
                    return "platform:telegram" in (await client.get(f"{base}/readyz")).json()["problems"]

                await eventually(polling_stopped, 5, what="readiness to notice polling stopped")
            gate.set()  # now the running answer may finish
            err = await terminate(proc, timeout=25)
            took = time.monotonic() - signalled
        finally:
            if proc.returncode is None:
                await terminate(proc)
        assert proc.returncode == 0, err[-3000:]
        assert took < 20, f"exit took {took:.1f}s, longer than the grace"
        finals = _final_texts(tg, ALICE["id"])
        assert finals[-1].endswith("THE END."), finals  # the whole answer reached the chat
        assert fake_gateway.served == 1  # the queued message was left for another process
        assert not fake_slack.bot_replies("C0GENERAL1", _ts)
    await fake_slack.close()


async def _stop(proc: asyncio.subprocess.Process) -> tuple[str, str]:
    """SIGTERM and wait: (stdout, stderr)."""
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 25)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
    return out.decode(), err.decode()


async def _until_status(client: httpx.AsyncClient, url: str, status: int, timeout: float = 5.0) -> None:
    async def answers() -> bool:
        return (await client.get(url)).status_code == status

    await eventually(answers, timeout, what=f"{url} answering {status}")


async def test_sigterm_past_the_grace_ends_the_answer_as_interrupted(
    fake_gateway, database_url: str, tmp_path: Path
) -> None:
    fake_gateway.script(Answer(text="Once upon a time " + "and so on " * 200, chunk_size=10, chunk_delay=0.1))
    async with FakeTelegram() as tg:
        tg.add_chat(ALICE["id"], "private", user=ALICE)
        port = free_port()
        env = run_env(
            fake_gateway.base_url,
            database_url,
            port,
            TELEGRAM_BOT_TOKEN=tg.token,
            TELEGRAM_API_URL=tg.api_url,
            BOT_SHUTDOWN_GRACE="0.5",
        )
        proc = await start_bot("run", env=env, cwd=tmp_path)
        try:
            await wait_healthz(port)
            tg.send_user_message(ALICE["id"], ALICE, "tell me an endless story")
            await eventually(lambda: bool(tg.calls_to("sendMessageDraft")), 20, what="the answer to start streaming")
            signalled = time.monotonic()
            err = await terminate(proc, timeout=20)
            took = time.monotonic() - signalled
        finally:
            if proc.returncode is None:
                await terminate(proc)
        assert proc.returncode == 0, err[-3000:]
        assert took < 8, f"exit took {took:.1f}s"
        final = _final_texts(tg, ALICE["id"])[-1]
        assert final.startswith("Once upon a time"), final
        assert final.endswith(SHUTDOWN_MARKER.strip("_")), final  # rendered without Markdown's underscores
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            states = (await conn.execute(text("SELECT status FROM turns"))).scalars().all()
    finally:
        await engine.dispose()
    assert states == ["interrupted"]


async def test_json_logs_carry_ids_and_never_a_secret_or_message_text(database_url: str, tmp_path: Path) -> None:
    api_key = "gw-key-7c0ffee-do-not-log"
    webhook_secret = "hook_secret-91a7b3"
    gateway = await FakeGateway(api_key=api_key).start()
    private_words = "my-private-words-q7z"
    gateway.script(
        Answer(text=f"You said {private_words}."),
        Answer(status=500, error_body="upstream on fire"),
        Answer(status=500, error_body="upstream on fire"),
        Answer(text="Slack hello."),
    )
    fake_slack = await FakeSlack().start()
    async with FakeTelegram(token="987654:AAHsecret-telegram-token_value") as tg:
        tg.add_chat(ALICE["id"], "private", user=ALICE)
        port = free_port()
        secrets = [api_key, tg.token, webhook_secret, BOT_TOKEN, APP_TOKEN, SIGNING_SECRET, METRICS_TOKEN]
        env = run_env(
            gateway.base_url,
            database_url,
            port,
            api_key=api_key,
            TELEGRAM_BOT_TOKEN=tg.token,
            TELEGRAM_API_URL=tg.api_url,
            TELEGRAM_WEBHOOK_URL="https://bot.example.com/telegram/webhook",
            TELEGRAM_WEBHOOK_SECRET=webhook_secret,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_APP_TOKEN=APP_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=fake_slack.api_url,
            METRICS_TOKEN=METRICS_TOKEN,
            LOG_FORMAT="json",
            LOG_LEVEL="DEBUG",
            BOT_MAX_RETRIES="1",
            **FAST,
        )
        proc = await start_bot("run", env=env, cwd=tmp_path)
        try:
            await wait_healthz(port)
            await eventually(lambda: bool(tg.webhook.get("url")), 20, what="setWebhook")
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(timeout=10) as client:
                hook = f"{base}/telegram/webhook"
                update = {"update_id": 7001, "message": tg.new_message(ALICE["id"], ALICE, f"note {private_words}")}
                refused = await client.post(hook, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"})
                assert refused.status_code == 403
                ok = await client.post(hook, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": webhook_secret})
                assert ok.status_code == 200
                await eventually(
                    lambda: any(private_words in t for t in _final_texts(tg, ALICE["id"])), 20, what="answer"
                )
                # An error: the gateway fails the next answer.
                second = {"update_id": 7002, "message": tg.new_message(ALICE["id"], ALICE, "again please")}
                await client.post(hook, json=second, headers={"X-Telegram-Bot-Api-Secret-Token": webhook_secret})
                await eventually(lambda: len(_final_texts(tg, ALICE["id"])) >= 2, 20, what="the error notice")
                _ts, envelope = fake_slack.user_message("C0GENERAL1", f"<@{BOT_USER_ID}> hi slack", mention=True)
                await fake_slack.push(envelope)
                await eventually(
                    lambda: any("Slack hello." in (m.text or "") for m in fake_slack.bot_replies("C0GENERAL1", _ts)),
                    20,
                    what="Slack answer",
                )
                assert (await client.get(f"{base}/metrics", headers={"Authorization": "Bearer x"})).status_code == 401
                assert await _metrics(client, port)
            # Garbage on the port: the web server's own complaint is a JSON line too.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"NOT HTTP AT ALL\r\n\r\n")
            await writer.drain()
            await asyncio.wait_for(reader.read(), 5)
            writer.close()
        finally:
            out, err = await _stop(proc)
            await gateway.stop()
        assert proc.returncode == 0, err[-3000:]
    await fake_slack.close()

    for line in out.splitlines():  # stdout carries nothing secret either
        assert not any(secret in line for secret in secrets), line
    lines = [line for line in err.splitlines() if line.strip()]
    # DEBUG: a whole run's worth of lines to scan (Alembic's no longer among them: the database
    # is at head, so `bot run` does not import it)
    assert len(lines) > 10, err[-2000:]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for line in lines:
        for secret in secrets:
            assert secret not in line, f"a configured secret reached the log: {line}"
        assert tg.token.split(":")[1] not in line
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys()
        if record["level"] != "DEBUG":
            assert private_words not in json.dumps(record, ensure_ascii=False), record
    assert any(r["logger"].startswith("uvicorn") for r in records)
    failed = [r for r in records if r["logger"] == "bot.core.outcome" and r["level"] == "WARNING"]
    assert failed and isinstance(failed[0].get("conversation_id"), int) and isinstance(failed[0].get("turn_id"), int)


def test_operations_settings_are_checked_and_the_metrics_token_is_a_secret() -> None:
    from bot.config import SettingsError, load_settings

    settings = load_settings(require_api_key=False, _env_file=None, LOG_FORMAT="JSON", METRICS_TOKEN=METRICS_TOKEN)
    assert settings.log_format == "json" and settings.shutdown_grace == 20.0
    assert METRICS_TOKEN in settings.secrets()  # so the log filter masks it
    try:
        load_settings(require_api_key=False, _env_file=None, LOG_FORMAT="xml", BOT_SHUTDOWN_GRACE="-1")
    except SettingsError as exc:
        assert sorted(line.split(":")[0] for line in exc.lines) == ["BOT_SHUTDOWN_GRACE", "LOG_FORMAT"]
    else:
        raise AssertionError("bad operations settings were accepted")
