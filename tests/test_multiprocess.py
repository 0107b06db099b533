"""Several `bot run` processes on one PostgreSQL: one bot, not several.

Real processes against the fake Telegram Bot API (webhook mode: the test plays the load
balancer and posts each update to the process it chooses) and the fake gateway. The fake
Bot API runs in a process of its own, so that it sees requests when they arrive, not when
this test's busy event loop gets to them."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store.models import Message, Part, Turn
from tests.conftest import PG_URL
from tests.fakes.apart import TelegramApart
from tests.fakes.gateway import Answer
from tests.fakes.telegram_api import FakeLimits
from tests.polling import eventually
from tests.processes import bot_env, free_port, start_bot, terminate, wait_healthz

pytestmark = pytest.mark.skipif(not PG_URL, reason="several processes share one PostgreSQL")

SCALE = 0.2
GROUP = -100700
BOB = {"id": 2001, "is_bot": False, "first_name": "Bob"}
CAROL = {"id": 2002, "is_bot": False, "first_name": "Carol"}
SECRET = "multi_process_secret-123"
REDIS_URL = "redis://127.0.0.1:6379/0"
THINK = "Thinking it over."


class Bots:
    def __init__(self, tg: TelegramApart, env: dict[str, str], tmp: Path) -> None:
        self.tg, self.env, self.tmp = tg, env, tmp
        self.procs: list[tuple[asyncio.subprocess.Process, int]] = []
        self._update_id = 5000
        self.stderr: list[str] = []

    async def start(self, count: int) -> None:
        for _ in range(count):
            port = free_port()
            proc = await start_bot("run", env={**self.env, "PORT": str(port)}, cwd=self.tmp)
            self.procs.append((proc, port))
        for _, port in self.procs[-count:]:
            await wait_healthz(port)

    def update(self, text: str, user: dict) -> dict:
        self._update_id += 1
        full = f"@{self.tg.username} {text}"
        message = self.tg.new_message(GROUP, user, full, entities=[self.tg.mention_entity(full)])
        return {"update_id": self._update_id, "message": message}

    def private(self, text: str, user: dict) -> dict:
        self._update_id += 1
        return {"update_id": self._update_id, "message": self.tg.new_message(user["id"], user, text)}

    async def deliver(self, update: dict, index: int) -> int:
        _, port = self.procs[index]
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"http://127.0.0.1:{port}/telegram/webhook",
                content=json.dumps(update),
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"},
            )
        return response.status_code

    async def stop(self) -> list[str]:
        """Stop every process (once) and return what each wrote to stderr."""
        while len(self.stderr) < len(self.procs):
            self.stderr.append(await terminate(self.procs[len(self.stderr)][0]))
        return self.stderr


@pytest.fixture
async def bots(fake_gateway, database_url: str, tmp_path: Path, request) -> AsyncIterator[Callable]:
    scale = getattr(request, "param", SCALE)  # a test may ask for other windows (indirect parametrize)
    async with TelegramApart(limits=FakeLimits().scaled(scale)) as tg:
        tg.add_chat(GROUP, "supergroup", title="Team")
        env = bot_env(
            BYTESPIKE_API_KEY="test-key",
            BYTESPIKE_BASE_URL=fake_gateway.base_url,
            DATABASE_URL=database_url,
            HOST="127.0.0.1",
            TELEGRAM_BOT_TOKEN=tg.token,
            TELEGRAM_API_URL=tg.api_url,
            TELEGRAM_WEBHOOK_URL="https://bot.example.com/telegram/webhook",
            TELEGRAM_WEBHOOK_SECRET=SECRET,
            PLATFORM_TIME_SCALE=str(scale),
            BOT_SWEEP_INTERVAL="1",
            BOT_CHECKPOINT_INTERVAL="0.2",
            REDIS_URL=REDIS_URL,
        )
        made = Bots(tg, env, tmp_path)
        yield made
        for err in await made.stop():
            assert "Traceback" not in err, err[-3000:]


async def rows(database_url: str, *columns, join=None):
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            query = select(*columns)
            return (await conn.execute(query.join(*join) if join else query)).all()
    finally:
        await engine.dispose()


def finals(tg: TelegramApart) -> list:
    return [
        m
        for m in tg.bot_messages(GROUP)
        if any(
            b.get("callback_data", "").startswith("regen:")
            for row in (m.reply_markup or {}).get("inline_keyboard", [])
            for b in row
        )
    ]


async def test_a_duplicate_delivery_to_two_processes_is_answered_once(bots, fake_gateway, database_url) -> None:
    fake_gateway.default = lambda body: Answer(text="one answer", reasoning=THINK)
    await bots.start(2)
    update = bots.update("hello", BOB)
    assert await asyncio.gather(bots.deliver(update, 0), bots.deliver(update, 1)) == [200, 200]
    await eventually(lambda: finals(bots.tg), 20)
    # The behaviour under test: given a second, the other process answers nothing more (two
    # processes have no common drain to wait on).
    await asyncio.sleep(1.0)
    assert [m.text for m in bots.tg.bot_messages(GROUP)] == ["one answer"]
    assert len(fake_gateway.requests) == 1


async def test_two_messages_at_two_processes_are_answered_in_order_one_at_a_time(
    bots, fake_gateway, database_url
) -> None:
    fake_gateway.default = lambda body: Answer(
        text="answer: " + json.dumps(body["messages"][-1]["content"])[-40:],
        reasoning=THINK,
        chunk_size=6,
        chunk_delay=0.02,
    )
    await bots.start(2)
    first, second = bots.update("first question", BOB), bots.update("second question", CAROL)
    assert await asyncio.gather(bots.deliver(first, 0), bots.deliver(second, 1)) == [200, 200]

    async def settled() -> list:
        turns = await rows(database_url, Turn.id, Turn.status, Turn.started_at, Turn.finished_at, Turn.request_seq)
        users = await rows(database_url, Message.status, Message.role)
        done = (
            turns
            and all(t.status == "complete" for t in turns)
            and all(u.status == "answered" for u in users if u.role == "user")
        )
        return turns if done else []

    turns = await eventually(settled, 30, every=0.1)
    turns = sorted(turns, key=lambda t: t.started_at)
    for earlier, later in zip(turns, turns[1:]):
        assert earlier.finished_at <= later.started_at, "one answer at a time"
        assert earlier.request_seq < later.request_seq, "in arrival order"
    # The two deliveries race, so "first" is whichever the store numbered first: that one is asked first.
    asked = await rows(database_url, Message.seq, Part.text, join=(Part, Part.message_id == Message.id))
    earliest = min((row for row in asked if row.text and "question" in row.text), key=lambda row: row.seq).text
    question = earliest.split("@" + bots.tg.username)[-1].strip()
    last_user = fake_gateway.requests[0].body["messages"][-1]["content"]
    assert question in json.dumps(last_user), "the question stored first was asked first"
    assert len(finals(bots.tg)) == len(turns), "every turn's answer was written once"


async def test_a_killed_process_s_answer_is_finalised_by_the_survivor_within_10_s(
    bots, fake_gateway, database_url
) -> None:
    fake_gateway.script(
        Answer(text="a long answer that will be cut " * 40, reasoning=THINK, chunk_size=6, chunk_delay=0.05),
        Answer(text="the survivor answers", reasoning=THINK),
    )
    await bots.start(2)
    assert await bots.deliver(bots.update("write a lot", BOB), 0) == 200
    await eventually(lambda: [m for m in bots.tg.bot_messages(GROUP) if m.edits >= 1], 20)

    async def partial_answer_saved() -> bool:  # what the survivor repairs from
        saved = await rows(database_url, Part.text, join=(Message, Message.id == Part.message_id))
        return any((row.text or "").startswith("a long answer") for row in saved)

    await eventually(partial_answer_saved, 20, every=0.1)
    victim, _ = bots.procs[0]
    victim.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    await victim.wait()
    cut = await eventually(lambda: [m for m in bots.tg.bot_messages(GROUP) if "restarted" in m.text], 10)
    took = time.monotonic() - killed
    print(f"\nkill -9 → the survivor rewrote the answer after {took:.1f} s")
    assert took < 10, "finalised within 10 s"
    assert cut[0].text.startswith("a long answer"), "the half-written message itself is rewritten"
    statuses = [r.status for r in await rows(database_url, Turn.status)]
    assert statuses == ["interrupted"]
    assert await bots.deliver(bots.update("are you still there?", CAROL), 1) == 200
    await eventually(lambda: [m for m in bots.tg.bot_messages(GROUP) if m.text == "the survivor answers"], 20)


async def test_a_hundred_conversations_over_two_processes_draw_no_429(bots, fake_gateway) -> None:
    """Telegram's bot-wide limit (30 a second) holds for the two processes together: their
    budgets are counted in Redis (REDIS_URL)."""
    # Each answer streams for about a second, wanting a draft every 0.16 s in its chat: far
    # more than the bot may send, so the budgets, not the load, set the pace. Few, large
    # chunks: the fake gateway shares this test's event loop and the machine's two cores.
    fake_gateway.default = lambda body: Answer(
        text="streaming along " * 20 + "answer: " + body["messages"][-1]["content"][-12:],
        reasoning=THINK,
        chunk_size=30,
        chunk_delay=0.1,
    )
    users = [{"id": 3000 + i, "is_bot": False, "first_name": f"User{i}"} for i in range(100)]
    for user in users:
        bots.tg.add_chat(user["id"], "private", user=user)
    await bots.start(2)
    codes = await asyncio.gather(
        *(bots.deliver(bots.private(f"question {i:03d}", user), i % 2) for i, user in enumerate(users))
    )
    assert set(codes) == {200}

    def answered() -> list:
        done = [
            u
            for u in users
            if any(m.text.rstrip().endswith(f"question {u['id'] - 3000:03d}") for m in bots.tg.bot_messages(u["id"]))
        ]
        return done if len(done) == len(users) else []

    # Checked seldom: each check asks the fake Bot API's process for 100 chats' messages.
    await eventually(answered, 90, every=1.0)
    # 0 in nearly every run; without REDIS_URL the same run earns ~90. A stall in a bot process
    # between counting a call and sending it can still, now and then, let one arrive bunched.
    earned = bots.tg.earned_429s()
    print(f"\n429s earned: {len(earned)}")
    warnings = [
        line
        for err in await bots.stop()
        for line in err.splitlines()
        if "WARNING" in line and "429, pausing" not in line
    ]
    assert not [w for w in warnings if "Redis unreachable" in w], "the budgets were shared throughout"
    assert len(earned) <= 2, (sorted({c.method for c in earned}), warnings[-20:])
    assert bots.tg.limit_violations() == []


async def test_one_process_polls_the_other_says_so_once_and_takes_over_when_it_dies(bots, fake_gateway) -> None:
    """Long polling cannot run twice (Telegram ends the older getUpdates with 409 Conflict):
    one process polls, a second says so on one line and stays up, and polls once the first
    is gone."""
    fake_gateway.default = lambda body: Answer(
        text="answer to " + body["messages"][-1]["content"][-6:], reasoning=THINK
    )
    bots.env = {k: v for k, v in bots.env.items() if not k.startswith("TELEGRAM_WEBHOOK")}
    bots.tg.add_chat(BOB["id"], "private", user=BOB)

    def answered(tag: str) -> list:
        return [m for m in bots.tg.bot_messages(BOB["id"]) if m.text == f"answer to {tag}"]

    await bots.start(1)
    bots.tg.send_user_message(BOB["id"], BOB, "first  q-0001")
    await eventually(lambda: answered("q-0001"), 20)  # the first process polls
    await bots.start(1)
    await asyncio.sleep(2.5)  # the second has looked for the polling lead more than once
    victim, _ = bots.procs[0]
    victim.send_signal(signal.SIGKILL)
    await victim.wait()
    killed = time.monotonic()
    bots.tg.send_user_message(BOB["id"], BOB, "second q-0002")
    await eventually(lambda: answered("q-0002"), 20)  # the survivor took over polling
    conflicts = [c for c in bots.tg.calls_to("getUpdates") if c.status == 409 and c.at < killed]
    assert conflicts == [], "two processes never polled at once"
    second = (await bots.stop())[1]
    assert sum("another process is polling" in line for line in second.splitlines()) == 1, second[-2000:]
    assert sum("polling here now" in line for line in second.splitlines()) == 1, second[-2000:]
