"""The soak's mixed traffic: conversations that come and go on Telegram and Slack.

Each conversation is a short script run against a place nobody used before (a new private
chat, a new group, a new Slack thread), one step after another as a person would: messages
(some with a photo or a file), commands (/help, /new, /usage), a Stop while the answer
streams, a Regenerate on a finished answer. A step waits for what the user would see
(the finished answer, the command's reply) before the next. Every answer carries its
message's tag, so at the end each tag's finished answers on the fake platforms can be
counted: exactly one per message, plus one per Regenerate.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from adapters.slack import controls as slack_controls
from bench.answers import answer_text
from bench.service_harness import CHUNK, Deliver, Fakes
from tests.fakes.gateway import Answer, last_user_text
from tests.fakes.slack_api import BOT_USER_ID, FakeMessage
from tests.fakes.telegram_api import StoredMessage
from tests.pngs import png

Platform = Literal["telegram", "slack"]
Kind = Literal["tg-private", "tg-group", "slack-thread"]
STEP_TIMEOUT = 180.0  # a step's answer may wait behind Slack's per-minute budgets
_ASK = re.compile(r"\bsoak ([TS]\d{6}) tokens=(\d+)")
RATE = 40.0  # tokens a second, as the service benchmark's answers
STOP_TOKENS = 480  # an answer long enough (12 s) to be stopped while it streams
PHOTO = png(64, 48)
NOTE = ("Opening hours: 9 to 17 on weekdays.\n" * 20).encode()


def soak_answer(body: dict) -> Answer:
    """The fake gateway's answer to a soak message: its tag, then ``tokens`` tokens of text."""
    found = _ASK.search(last_user_text(body))
    if found is None:
        return Answer(text="ok", reasoning="Short.")
    tag, tokens = found.group(1), int(found.group(2))
    return Answer(
        text=f"{tag}: " + answer_text(tokens * CHUNK),
        reasoning="Thinking it over.",
        reasoning_style="inline",
        chunk_size=CHUNK,
        first_token_delay=0.3,
        chunk_delay=1.0 / RATE,
        completion_tokens=tokens,
    )


@dataclass
class Place:
    """One conversation's place and what should be there at the end."""

    platform: Platform
    where: Any  # Telegram chat id, or Slack (channel, thread ts)
    answers: dict[str, int] = field(default_factory=dict)  # tag -> finished answers expected
    command_replies: int = 0


@dataclass
class Ledger:
    places: list[Place] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)  # what was done, by kind of step
    stopped: int = 0  # Stops that ended their answer as stopped (the platform shows it)
    late_stops: int = 0  # Stops pressed too late: the answer had finished
    timeouts: list[str] = field(default_factory=list)  # steps whose result never showed
    _next: int = 0

    def tag(self, platform: Platform) -> str:
        self._next += 1
        return f"{'T' if platform == 'telegram' else 'S'}{self._next:06d}"

    def count(self, step: str) -> None:
        self.sent[step] = self.sent.get(step, 0) + 1


async def until(check: Callable[[], Any], timeout: float = STEP_TIMEOUT, poll: float = 0.2) -> Any:
    """``check()``'s first truthy value, or None after ``timeout`` seconds (the bench polls the
    fakes' state; this is not a test)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(poll)


# --- what the platforms show ---------------------------------------------------------------


def _tg_buttons(m: StoredMessage) -> list[str]:
    markup = m.reply_markup or {}
    return [b.get("callback_data", "") for row in markup.get("inline_keyboard", []) for b in row]


def _tg_final(m: StoredMessage) -> bool:
    return any(b.startswith("regen:") for b in _tg_buttons(m))


def _tg_streaming(m: StoredMessage) -> bool:
    return any(b.startswith("stop:") for b in _tg_buttons(m))


def _slack_final(m: FakeMessage) -> bool:
    return slack_controls.REGENERATE in m.button_ids and not m.streaming


def _slack_streaming(m: FakeMessage) -> bool:
    return m.streaming or slack_controls.STOP in m.button_ids


class Traffic:
    """Runs the conversations against one `bot run` (``deliver``) and keeps the ledger."""

    def __init__(self, fakes: Fakes, deliver: Deliver, *, seed: int = 20, slack_channels: int = 20) -> None:
        self.fakes, self.deliver = fakes, deliver
        self.ledger = Ledger()
        self.rng = random.Random(seed)
        self.channels = [f"C0SOAK{k:03d}" for k in range(slack_channels)]
        self._chats = 0
        self._update_id = 1_000_000
        for k in range(50):  # the people who talk in Slack threads (users.info knows them)
            fakes.slack.users.setdefault(f"U0SOAK{k:03d}", f"person{k}")

    # --- helpers ---
    def _tokens(self) -> int:
        return self.rng.randint(40, 200)

    async def _tg_post(self, update: dict) -> None:
        self._update_id += 1
        await self.deliver.post_telegram({"update_id": self._update_id, **update})

    def tg_messages(self, chat: int, tag: str | None = None) -> list[StoredMessage]:
        return [m for m in self.fakes.tg.bot_messages(chat) if tag is None or tag in m.text]

    def slack_messages(self, where: tuple[str, str], tag: str | None = None) -> list[FakeMessage]:
        return [m for m in self.fakes.slack.bot_replies(*where) if tag is None or tag in m.text]

    def slack_command_replies(self, where: tuple[str, str]) -> list[Any]:
        """The thread's untagged replies: posted ones (/new) and those shown to their asker
        alone (/help, /usage: chat.postEphemeral in the thread)."""
        channel, thread = where
        personal = [e for e in self.fakes.slack.ephemerals if e.channel == channel and e.thread_ts == thread]
        return [*self.slack_messages(where), *personal]

    def finals(self, place: Place, tag: str) -> list[Any]:
        if place.platform == "telegram":
            return [m for m in self.tg_messages(place.where, tag) if _tg_final(m)]
        return [m for m in self.slack_messages(place.where, tag) if _slack_final(m)]

    async def _wait_answers(self, place: Place, tag: str, step: str) -> list[Any] | None:
        want = place.answers[tag]
        found = await until(lambda: f if len(f := self.finals(place, tag)) >= want else None)
        if found is None:
            self.ledger.timeouts.append(f"{step} {tag} on {place.platform} {place.where}")
        return found

    async def _think(self) -> None:
        await asyncio.sleep(self.rng.uniform(0.5, 3.0))

    # --- Telegram ---
    async def tg_ask(
        self, place: Place, user: dict, *, mention: bool, photo: bool = False, tokens: int | None = None
    ) -> str:
        tg = self.fakes.tg
        tag = self.ledger.tag("telegram")
        text = f"soak {tag} tokens={tokens or self._tokens()}"
        entities = None
        if mention:
            text = f"@{tg.username} {text}"
            entities = [tg.mention_entity(text)]
        place.answers[tag] = 1
        if photo:
            message = tg.new_message(
                place.where,
                user,
                None,
                extra={
                    "photo": tg.photo_sizes(PHOTO),
                    "caption": text,
                    **({"caption_entities": entities} if entities else {}),
                },
            )
        else:
            message = tg.new_message(place.where, user, text, entities=entities)
        self.ledger.count("tg photo" if photo else "tg message")
        await self._tg_post({"message": message})
        return tag

    async def tg_command(self, place: Place, user: dict) -> str:
        tg = self.fakes.tg
        command = self.rng.choice(("/help", "/usage", "/new"))
        before = len(self.tg_messages(place.where))
        message = tg.new_message(place.where, user, command, entities=[tg.command_entity(command)])
        place.command_replies += 1
        self.ledger.count(f"tg {command}")
        await self._tg_post({"message": message})
        if await until(lambda: len(self.tg_messages(place.where)) > before) is None:
            self.ledger.timeouts.append(f"{command} on telegram {place.where}")
        return command

    async def tg_regenerate(self, place: Place, user: dict, tag: str) -> None:
        finals = self.finals(place, tag)
        if not finals:
            return
        final = finals[-1]
        regen = next(b for b in _tg_buttons(final) if b.startswith("regen:"))
        place.answers[tag] += 1
        self.ledger.count("tg regenerate")
        await self._tg_post(self.fakes.tg.button_press(place.where, final.message_id, user, regen))
        await self._wait_answers(place, tag, "regenerate")

    async def tg_stop(self, place: Place, user: dict, member: dict) -> None:
        tag = await self.tg_ask(place, user, mention=True, tokens=STOP_TOKENS)
        streaming = await until(
            lambda: next((m for m in self.tg_messages(place.where, tag) if _tg_streaming(m)), None), timeout=60
        )
        if streaming is not None:
            await asyncio.sleep(self.rng.uniform(0.5, 2.0))
            stop = next((b for b in _tg_buttons(streaming) if b.startswith("stop:")), None)
            if stop is not None:
                self.ledger.count("tg stop")
                await self._tg_post(self.fakes.tg.button_press(place.where, streaming.message_id, member, stop))
        found = await self._wait_answers(place, tag, "stop")
        if found:
            if "(stopped)" in found[-1].text:
                self.ledger.stopped += 1
            else:
                self.ledger.late_stops += 1

    async def tg_private(self) -> None:
        self._chats += 1
        chat = 7_000_000 + self._chats
        user = self.deliver.telegram_private(chat)
        place = Place("telegram", chat)
        self.ledger.places.append(place)
        last: str | None = None
        for i in range(self.rng.randint(1, 4)):
            if i:
                await self._think()
            roll = self.rng.random()
            if i and roll < 0.15:
                if await self.tg_command(place, user) == "/new":
                    last = None  # a fresh start: the earlier answers are nothing to regenerate
            elif last and roll < 0.3:
                await self.tg_regenerate(place, user, last)
            else:
                last = await self.tg_ask(place, user, mention=False, photo=roll > 0.85)
                await self._wait_answers(place, last, "message")

    async def tg_group(self) -> None:
        self._chats += 1
        chat = -1_007_000_000 - self._chats
        self.deliver.telegram_group(chat)
        people = [
            {"id": 8_000_000 + 2 * self._chats + k, "is_bot": False, "first_name": f"Member{k}"} for k in range(2)
        ]
        place = Place("telegram", chat)
        self.ledger.places.append(place)
        last: str | None = None
        for i in range(self.rng.randint(1, 3)):
            if i:
                await self._think()
            roll = self.rng.random()
            who = people[i % 2]
            if roll < 0.25:
                await self.tg_stop(place, who, people[(i + 1) % 2])
            elif last and roll < 0.4:
                await self.tg_regenerate(place, who, last)
            else:
                last = await self.tg_ask(place, who, mention=True)
                await self._wait_answers(place, last, "message")

    # --- Slack ---
    async def _slack_post(self, envelope: dict) -> None:
        await self.deliver.post_slack(json.dumps(envelope).encode())

    def _slack_file(self) -> Any:
        if self.rng.random() < 0.5:
            return self.fakes.slack.add_file("photo.png", "image/png", PHOTO)
        return self.fakes.slack.add_file("hours.txt", "text/plain", NOTE)

    async def slack_ask(self, place: Place | None, channel: str, user: str, *, with_file: bool) -> tuple[Place, str]:
        slack = self.fakes.slack
        tag = self.ledger.tag("slack")
        text = f"<@{BOT_USER_ID}> soak {tag} tokens={self._tokens()}"
        files = [self._slack_file()] if with_file else None
        ts, envelope = slack.user_message(
            channel, text, user=user, mention=True, files=files, thread_ts=place.where[1] if place else None
        )
        if place is None:
            place = Place("slack", (channel, ts))
            self.ledger.places.append(place)
        place.answers[tag] = 1
        self.ledger.count("slack file" if with_file else "slack message")
        await self._slack_post(envelope)
        await self._wait_answers(place, tag, "message")
        return place, tag

    async def slack_command(self, place: Place, user: str) -> str:
        command = self.rng.choice(("/help", "/usage", "/new"))
        before = len(self.slack_command_replies(place.where))
        _, envelope = self.fakes.slack.user_message(
            place.where[0], f"<@{BOT_USER_ID}> {command}", user=user, mention=True, thread_ts=place.where[1]
        )
        place.command_replies += 1
        self.ledger.count(f"slack {command}")
        await self._slack_post(envelope)
        if await until(lambda: len(self.slack_command_replies(place.where)) > before) is None:
            self.ledger.timeouts.append(f"{command} on slack {place.where}")
        return command

    async def slack_regenerate(self, place: Place, user: str, tag: str) -> None:
        finals = self.finals(place, tag)
        if not finals:
            return
        place.answers[tag] += 1
        self.ledger.count("slack regenerate")
        payload = self.fakes.slack.block_action(finals[-1], slack_controls.REGENERATE, user=user)
        await self.deliver.post_slack(self.fakes.slack.form_body(payload), form=True)
        await self._wait_answers(place, tag, "regenerate")

    async def slack_thread(self) -> None:
        channel = self.rng.choice(self.channels)
        user = f"U0SOAK{self.rng.randrange(50):03d}"
        place, tag = await self.slack_ask(None, channel, user, with_file=self.rng.random() < 0.15)
        last: str | None = tag
        for _ in range(self.rng.randint(0, 2)):
            await self._think()
            roll = self.rng.random()
            if roll < 0.15:
                if await self.slack_command(place, user) == "/new":
                    last = None
            elif last and roll < 0.3:
                await self.slack_regenerate(place, user, last)
            else:
                place, last = await self.slack_ask(place, channel, user, with_file=roll > 0.85)

    # --- the whole ---
    async def conversation(self, kind: Kind) -> None:
        if kind == "tg-private":
            await self.tg_private()
        elif kind == "tg-group":
            await self.tg_group()
        else:
            await self.slack_thread()

    def pick(self) -> Kind:
        roll = self.rng.random()
        return "tg-private" if roll < 0.5 else "tg-group" if roll < 0.72 else "slack-thread"


@dataclass(frozen=True, slots=True)
class Pace:
    """How the soak offers its load: a new conversation every ``gap`` seconds, and every
    ``burst_every`` seconds ``burst`` more at once (two thirds Telegram private chats)."""

    gap: float = 1.6
    burst_every: float = 120.0
    burst: int = 12


async def offer(traffic: Traffic, seconds: float, pace: Pace) -> list[asyncio.Task[None]]:
    """Start conversations for ``seconds``; returns their tasks (some still running)."""
    tasks: list[asyncio.Task[None]] = []
    start = time.monotonic()
    next_burst = start + pace.burst_every / 2
    n = 0
    while (now := time.monotonic()) < start + seconds:
        kinds: list[Kind] = [traffic.pick()]
        if now >= next_burst:
            kinds += ["tg-private" if k % 3 else "slack-thread" for k in range(pace.burst)]
            traffic.ledger.count("burst")
            next_burst += pace.burst_every
        tasks += [asyncio.create_task(traffic.conversation(k)) for k in kinds]
        tasks = [t for t in tasks if not t.done() or t.exception() is not None]
        n += 1
        await asyncio.sleep(max(0.0, start + n * pace.gap - time.monotonic()))
    return tasks


@dataclass
class Verdict:
    """What the fakes show at the end against what the ledger expects."""

    answers_expected: int = 0
    answers_found: int = 0
    missing: list[str] = field(default_factory=list)  # tags with fewer finished answers than expected
    extra: list[str] = field(default_factory=list)  # tags with more, or messages nobody asked for
    unfinished: list[str] = field(default_factory=list)  # still showing Stop / still streaming
    command_replies_expected: int = 0
    command_replies_found: int = 0
    stopped_shown: int = 0


def verify(traffic: Traffic) -> Verdict:
    v = Verdict()
    for place in traffic.ledger.places:
        if place.platform == "telegram":
            shown: list[Any] = traffic.tg_messages(place.where)
            streaming = [m for m in shown if _tg_streaming(m)]
        else:
            shown = traffic.slack_messages(place.where)
            streaming = [m for m in shown if _slack_streaming(m)]
        v.unfinished += [f"{place.platform} {place.where}: {m.text[:40]!r}" for m in streaming]
        tagged = 0
        for tag, want in place.answers.items():
            got = [m for m in shown if tag in m.text]
            tagged += len(got)
            finished = [m for m in got if m not in streaming]
            v.answers_expected += want
            v.answers_found += min(len(finished), want)
            v.stopped_shown += sum("(stopped)" in m.text for m in finished)
            if len(finished) < want:
                v.missing.append(f"{tag}: {len(finished)}/{want}")
            elif len(got) > want:
                v.extra.append(f"{tag}: {len(got)}/{want}")
        others = len(shown) - tagged  # command replies (and nothing else should be there)
        if place.platform == "slack":  # personal command replies are ephemeral, apart from the thread
            others += len(traffic.slack_command_replies(place.where)) - len(shown)
        v.command_replies_expected += place.command_replies
        v.command_replies_found += min(others, place.command_replies)
        if others > place.command_replies:
            said = [m.text[:60] for m in shown if not any(tag in m.text for tag in place.answers)]
            v.extra.append(
                f"{place.platform} {place.where}: {others} untagged messages, {place.command_replies} commands: {said}"
            )
        elif others < place.command_replies:
            v.missing.append(f"{place.platform} {place.where}: {others}/{place.command_replies} command replies")
    return v
