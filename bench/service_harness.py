"""What the service benchmark runs against: the fakes in this process, and `bot run`
processes configured to talk to them.

The fake gateway, the fake Telegram Bot API, the fake Slack Web API and the fake Feishu Open
Platform (``tests/fakes``, their real limits on; Feishu's events pushed over its long
connection) serve on 127.0.0.1 in the benchmark's own event loop, so the moment
the gateway wrote an answer's first visible token and the moment a platform write arrived
are both ``time.monotonic()`` of one process. Each `bot run` is a child process with
``PLATFORM_TIME_SCALE=1``; its CPU and peak RSS are read from /proc.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.answers import answer_text
from tests.fakes.feishu_api import FakeFeishu
from tests.fakes.gateway import Answer, FakeGateway, echo_answer, last_user_text
from tests.fakes.slack_api import BOT_TOKEN, BOT_USER_ID, SIGNING_SECRET, FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.processes import bot_env, free_port

API_KEY = "bench-key"
WEBHOOK_SECRET = "bench_webhook_secret-0123456789"
CHUNK = 4  # characters per SSE chunk: one chunk is one token
CLK_TCK = os.sysconf("SC_CLK_TCK")

TG_WRITES = {"sendMessageDraft", "sendMessage", "editMessageText"}
SLACK_WRITES = {"chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream", "chat.stopStream"}
FEISHU_SENDS = {"im.message.create", "im.message.reply"}
FEISHU_WRITES = FEISHU_SENDS | {
    "im.message.patch",
    "cardkit.card.update",
    "cardkit.card_element.content",
    "cardkit.card.settings",
}
# Logged at every start by slack-bolt when given a client (the adapter passes both on purpose).
BENIGN = ("As you gave `client` as well, `token` will be unused",)
_TAG = re.compile(r"\bbench (\S+) think=(\d+) tokens=(\d+) rate=([\d.]+) ttft=([\d.]+)")


@dataclass(frozen=True, slots=True)
class Shape:
    """An answer as MiniMax streams it: ``think`` tokens of inline <think> reasoning, then
    ``tokens`` tokens of text, ``rate`` tokens a second, the first after ``ttft`` seconds.
    The reasoning is padded so that the text starts on a chunk of its own: the gateway's
    first visible chunk is exactly ``text[:CHUNK]``, and every answer is ``think + tokens``
    chunks, so the token count is exact."""

    think: int = 150
    tokens: int = 250
    rate: float = 40.0
    ttft: float = 0.5

    def message(self, tag: str) -> str:
        return f"bench {tag} think={self.think} tokens={self.tokens} rate={self.rate:g} ttft={self.ttft:g}"

    @classmethod
    def parse(cls, text: str) -> tuple[str, Shape] | None:
        m = _TAG.search(text)
        if m is None:
            return None
        return m.group(1), cls(int(m.group(2)), int(m.group(3)), float(m.group(4)), float(m.group(5)))

    @property
    def text(self) -> str:
        return answer_text(self.tokens * CHUNK)

    @property
    def reasoning(self) -> str:
        size = max(0, self.think * CHUNK - len("<think></think>\n\n"))
        return answer_text(size).ljust(size, ".") if size else ""

    @property
    def chunks(self) -> int:
        return -(-len(f"<think>{self.reasoning}</think>\n\n{self.text}") // CHUNK)

    @property
    def first_visible(self) -> str:
        return self.text[:CHUNK]

    def answer(self) -> Answer:
        return Answer(
            text=self.text,
            reasoning=self.reasoning,
            reasoning_style="inline",
            chunk_size=CHUNK,
            first_token_delay=self.ttft,
            chunk_delay=1.0 / self.rate if self.rate else 0.0,
            completion_tokens=self.chunks,
        )


WARM = Shape(think=3, tokens=8, rate=0.0, ttft=0.0)


@dataclass
class Turn:
    tag: str
    platform: str  # "telegram", "slack" or "feishu"
    where: Any  # Telegram chat id, Slack (channel, thread_ts), Feishu chat id
    shape: Shape
    sent: float = 0.0
    visible: float | None = None  # the gateway wrote the first visible token
    done: float | None = None  # the gateway wrote the answer's last event
    first_write: float | None = None  # the first accepted platform write showing answer text
    first_method: str = ""  # ... its method
    final: float | None = None  # the final write (with the answer's controls) arrived
    exact: bool = False  # the final write ends as the model's answer ends

    @property
    def added_latency(self) -> float | None:
        if self.visible is None or self.first_write is None:
            return None
        return self.first_write - self.visible


class Fakes:
    """The fakes, fresh for each scenario, and what they saw of each turn."""

    def __init__(self) -> None:
        self.gateway = FakeGateway(api_key=API_KEY, record=False)
        self.tg = FakeTelegram()
        self.slack = FakeSlack()
        self.feishu = FakeFeishu()
        self.turns: dict[str, Turn] = {}
        self._tg_seen = self._slack_seen = self._feishu_seen = 0
        self._card_chats: dict[str, str] = {}  # Feishu card id -> the chat its message is in
        self.gateway.default = self._answer
        self.gateway.on_timing = self._timing

    async def start(self) -> Fakes:
        await self.gateway.start()
        await self.tg.start()
        await self.slack.start()
        await self.feishu.start()
        return self

    async def stop(self) -> None:
        await self.gateway.stop()
        await self.tg.stop()
        await self.slack.close()
        await self.feishu.stop()

    @staticmethod
    def _answer(body: dict) -> Answer:
        found = Shape.parse(last_user_text(body))
        return found[1].answer() if found else echo_answer(body)

    def _timing(self, body: Any, event: str, at: float) -> None:
        found = Shape.parse(last_user_text(body))
        turn = self.turns.get(found[0]) if found else None
        if turn is None:
            return
        if event == "visible" and turn.visible is None:
            turn.visible = at
        elif event == "done":
            turn.done = at

    # --- what the platforms saw ---------------------------------------------------------

    def _slack_thread(self, args: dict) -> tuple[str, str] | None:
        channel = args.get("channel")
        if "thread_ts" in args:
            return channel, args["thread_ts"]
        message = self.slack.messages.get((channel, args.get("ts")))
        return (channel, message.thread_ts) if message is not None else None

    def _new_writes(self, before: float) -> Iterable[tuple[str, Any, float, str, str]]:
        """(platform, conversation, arrival, method, JSON of the parameters) of every accepted write
        that arrived since the last look and before ``before``."""
        calls = self.tg.calls
        while self._tg_seen < len(calls) and calls[self._tg_seen].at < before:
            c = calls[self._tg_seen]
            self._tg_seen += 1
            if c.ok and c.method in TG_WRITES:
                yield "telegram", c.chat_id, c.at, c.method, json.dumps(c.params, ensure_ascii=False)
        scalls = self.slack.calls
        while self._slack_seen < len(scalls) and scalls[self._slack_seen].at < before:
            s = scalls[self._slack_seen]
            self._slack_seen += 1
            if s.ok and s.method in SLACK_WRITES:
                yield "slack", self._slack_thread(s.args), s.at, s.method, json.dumps(s.args, ensure_ascii=False)
        fcalls = self.feishu.calls
        while self._feishu_seen < len(fcalls) and fcalls[self._feishu_seen].at < before:
            f = fcalls[self._feishu_seen]
            self._feishu_seen += 1
            if f.status == 200 and f.api in FEISHU_WRITES:
                found = self._feishu_write(f)
                if found is not None:
                    yield "feishu", found[0], f.at, f.api, found[1]

    def _feishu_write(self, call: Any) -> tuple[str, str] | None:
        """(chat, what the write made the message show) of an accepted Feishu write. A card
        message shows its card as it read when the message was sent; a card operation shows
        what it sent."""
        body = call.body or {}
        if call.api in FEISHU_SENDS:
            if call.api == "im.message.create":
                chat = str(body.get("receive_id", ""))
            else:
                asked = self.feishu.messages.get(call.path.rstrip("/").split("/")[-2])
                chat = asked.chat_id if asked is not None else ""
            content = json.loads(body.get("content") or "{}")
            if content.get("type") == "card":
                card_id = str(content.get("data", {}).get("card_id"))
                self._card_chats[card_id] = chat
                card = self.feishu.cards.get(card_id)
                return chat, card.text_at(call.at) if card is not None else ""
            return chat, json.dumps(content, ensure_ascii=False)
        if call.api == "im.message.patch":
            message = self.feishu.messages.get(call.path.rstrip("/").split("/")[-1])
            return (message.chat_id, json.dumps(body, ensure_ascii=False)) if message is not None else None
        card_id = call.path.split("/cards/")[1].split("/")[0]
        chat = self._card_chats.get(card_id)
        return (chat, json.dumps(body, ensure_ascii=False)) if chat is not None else None

    def settle(self, lag: float = 0.1) -> None:
        """Find each turn's first answer-bearing write and its final write, looking at the
        writes that arrived since the last call (older than ``lag`` seconds: settled)."""
        by_where: dict[tuple[str, Any], list[Turn]] = {}
        for t in self.turns.values():
            by_where.setdefault((t.platform, t.where), []).append(t)
        for platform, where, at, method, params in self._new_writes(time.monotonic() - lag):
            for t in by_where.get((platform, where), ()):
                if t.visible is None or at < t.visible:
                    continue
                if t.first_write is None and t.shape.first_visible in params:
                    t.first_write, t.first_method = at, method
                if t.final is None and ("regen:" in params or "answer_regenerate" in params):
                    t.final = at
                    tail = t.shape.text.rsplit("\n", 1)[-1][-12:]
                    t.exact = tail in params

    def rate_limited(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.tg.calls:
            if c.status == 429:
                out[f"tg:{c.method}"] = out.get(f"tg:{c.method}", 0) + 1
        for s in self.slack.calls:
            if s.status == 429:
                out[f"slack:{s.method}"] = out.get(f"slack:{s.method}", 0) + 1
        for f in self.feishu.rate_limited:  # 429 (99991400) and 230020 (a chat's or card's own limit)
            out[f"feishu:{f.api}"] = out.get(f"feishu:{f.api}", 0) + 1
        return out


# --- bot processes ---------------------------------------------------------------------------


def bot_settings(
    fakes: Fakes, database_url: str, *, telegram: bool, slack: bool, feishu: bool = False, **extra: str
) -> dict[str, str]:
    env = dict(
        BYTESPIKE_API_KEY=API_KEY,
        BYTESPIKE_BASE_URL=fakes.gateway.base_url,
        DATABASE_URL=database_url,
        HOST="127.0.0.1",
        PLATFORM_TIME_SCALE="1",
        LOG_LEVEL="WARNING",
        BOT_ADMIN_PAGE="false",
    )
    if telegram:
        env.update(
            TELEGRAM_BOT_TOKEN=fakes.tg.token,
            TELEGRAM_API_URL=fakes.tg.api_url,
            TELEGRAM_WEBHOOK_URL="https://bot.example.com/telegram/webhook",
            TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
        )
    if slack:
        env.update(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fakes.slack.api_url)
    if feishu:
        env.update(
            FEISHU_APP_ID=fakes.feishu.app_id,
            FEISHU_APP_SECRET=fakes.feishu.app_secret,
            FEISHU_DOMAIN=fakes.feishu.base_url,
        )
    env.update(extra)
    return env


@dataclass
class BotProcess:
    settings: dict[str, str]
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: asyncio.subprocess.Process | None = None
    log: Path | None = None
    argv: tuple[str, ...] = ("-m", "bot", "run")  # after the interpreter (a memory probe may wrap it)

    async def start(self) -> BotProcess:
        self.log = self.workdir / f"bot-{self.port}.log"
        with open(self.log, "wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                *self.argv,
                cwd=self.workdir,
                env=bot_env(**self.settings, PORT=str(self.port)),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        return self

    async def ready(self, timeout: float = 60.0) -> None:
        """Until /readyz says 200 (database migrated, platforms connected)."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while True:
                if self.proc is not None and self.proc.returncode is not None:
                    raise RuntimeError(f"bot run exited {self.proc.returncode}: {self.log_tail()}")
                try:
                    if (await client.get(f"http://127.0.0.1:{self.port}/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"bot run never became ready: {self.log_tail()}")
                await asyncio.sleep(0.1)

    def _stat(self) -> list[str]:
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()

    def cpu_seconds(self) -> float:
        """User + system CPU of the process (all its threads) so far."""
        fields = self._stat()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def peak_rss(self) -> int:
        """VmHWM: the process's peak resident set, in bytes."""
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return 0

    def log_tail(self, chars: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log and self.log.exists() else ""

    def problems(self) -> list[str]:
        """Warnings, errors and tracebacks the process logged (LOG_LEVEL=WARNING)."""
        if not self.log or not self.log.exists():
            return []
        return [
            line
            for line in self.log.read_text(errors="replace").splitlines()
            if line.strip() and not line.startswith(" ") and not any(b in line for b in BENIGN)
        ]

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


# --- delivering messages ----------------------------------------------------------------------


class Deliver:
    """Posts Telegram updates (webhook) and Slack events (HTTP, signed) to the bot processes,
    round-robin: the benchmark is the load balancer."""

    def __init__(self, fakes: Fakes, bots: list[BotProcess]) -> None:
        self.fakes, self.bots = fakes, bots
        self.client = httpx.AsyncClient(limits=httpx.Limits(max_connections=200), timeout=30)
        self._next = 0
        self._update_id = 10_000

    async def close(self) -> None:
        await self.client.aclose()

    def _bot(self) -> BotProcess:
        bot = self.bots[self._next % len(self.bots)]
        self._next += 1
        return bot

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        for _ in range(100):  # 503 until the adapter is connected: the platforms retry those
            response = await self.client.post(url, content=body, headers=headers)
            if response.status_code != 503:
                break
            await asyncio.sleep(0.1)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:200]}")

    async def post_telegram(self, update: dict) -> None:
        """One Telegram update (a message, a button press) to the next process's webhook."""
        await self._post(
            f"http://127.0.0.1:{self._bot().port}/telegram/webhook",
            json.dumps(update).encode(),
            {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET, "Content-Type": "application/json"},
        )

    async def post_slack(self, body: bytes, *, form: bool = False) -> None:
        """One signed Slack request: an Events API envelope, or (``form``) an interactivity payload."""
        kind = "application/x-www-form-urlencoded" if form else "application/json"
        await self._post(
            f"http://127.0.0.1:{self._bot().port}/slack/events", body, self.fakes.slack.signed(body, content_type=kind)
        )

    def telegram_private(self, user_id: int) -> dict:
        user = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}
        if user_id not in self.fakes.tg.chats:
            self.fakes.tg.add_chat(user_id, "private", user=user)
        return user

    def telegram_group(self, chat_id: int) -> None:
        if chat_id not in self.fakes.tg.chats:
            self.fakes.tg.add_chat(chat_id, "supergroup", title=f"Team {-chat_id}")

    async def telegram(self, turn: Turn, user: dict, *, mention: bool) -> None:
        tg = self.fakes.tg
        text = turn.shape.message(turn.tag)
        entities = None
        if mention:
            text = f"@{tg.username} {text}"
            entities = [tg.mention_entity(text)]
        self._update_id += 1
        update = {"update_id": self._update_id, "message": tg.new_message(turn.where, user, text, entities=entities)}
        self.fakes.turns[turn.tag] = turn
        turn.sent = time.monotonic()
        await self._post(
            f"http://127.0.0.1:{self._bot().port}/telegram/webhook",
            json.dumps(update).encode(),
            {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET, "Content-Type": "application/json"},
        )

    async def slack_mention(self, tag: str, channel: str, shape: Shape) -> Turn:
        ts, envelope = self.fakes.slack.user_message(channel, f"<@{BOT_USER_ID}> {shape.message(tag)}", mention=True)
        turn = Turn(tag, "slack", (channel, ts), shape)
        self.fakes.turns[tag] = turn
        body = json.dumps(envelope).encode()
        turn.sent = time.monotonic()
        await self._post(f"http://127.0.0.1:{self._bot().port}/slack/events", body, self.fakes.slack.signed(body))
        return turn

    async def feishu_mention(self, tag: str, group: Any, member: Any, shape: Shape) -> Turn:
        """A group member @s the bot; Feishu pushes the event over one of the bots' long
        connections (Feishu is the load balancer here) and waits for its ack."""
        fs = self.fakes.feishu
        _, event = fs.events.text(group, member, f"@_user_1 {shape.message(tag)}", mentions=[fs.bot])
        turn = Turn(tag, "feishu", group.chat_id, shape)
        self.fakes.turns[tag] = turn
        turn.sent = time.monotonic()
        delivery = await fs.push_event(event)
        if not delivery.acked:
            raise RuntimeError(f"feishu: event {tag} never acknowledged")
        return turn


async def wait_final(fakes: Fakes, turns: list[Turn], timeout: float, poll: float = 0.1) -> bool:
    """Until every turn's final write arrived (True), or ``timeout`` seconds (False)."""
    deadline = time.monotonic() + timeout
    while True:
        await asyncio.sleep(poll)
        fakes.settle()
        if all(t.final is not None for t in turns):
            return True
        if time.monotonic() > deadline:
            return False
