"""Drivers for the conformance suite: one per platform, each running the bot the way
`bot run` does (``Host``: the platform's plug-in, its own settings, an inbox into the core)
against that platform's fake server, and acting as a user of that platform would.

A new platform adds a driver here (and to ``DRIVERS``) and runs the whole suite.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bot.config import Settings
from bot.platform.base import Platform
from bot.platform.discovery import Configured, plugins
from bot.process.serve import Host
from tests.fakes.gateway import FakeGateway
from tests.platforms import platform_settings
from tests.polling import eventually

ALICE, MALLORY = "alice", "mallory"  # a user the bot serves, and one outside its allowlist
SCALE = 0.05  # every platform window and pacing interval, shrunk (the fakes' too)
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f"
    b"\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)


class Driver(ABC):
    """A user of one platform, and the bot serving them on it."""

    name: str
    has_downloads = True  # False: files are local (the terminal)

    def __init__(self, make_settings: Callable[..., Settings], gateway: FakeGateway, tmp: Path) -> None:
        self.make_settings = make_settings
        self.gateway = gateway
        self.tmp = tmp
        self.host: Host | None = None

    # --- the bot ---
    async def start(self, *, allow_only: str | None = None, **core: Any) -> None:
        """The bot on this platform; ``allow_only``: the one user its allowlist admits."""
        await self.open_fake()
        values = {**self.platform_values(), **(self.allowlist(allow_only) if allow_only else {})}
        settings = self.make_settings(PLATFORM_TIME_SCALE=SCALE, **core)
        chosen = Configured(plugins()[self.name], platform_settings(self.name, **values))
        self.host = Host(settings, [chosen], migrate=False)
        await self.host.start()
        self._adapter = self.host.adapters[0]

    async def stop(self) -> None:
        if self.host is not None:
            await self.host.close()
        await self.close_fake()

    async def shutdown(self) -> None:
        """What SIGTERM does to `bot run` (``Host.shutdown``)."""
        assert self.host is not None
        await self.host.shutdown()

    @property
    def adapter(self) -> Platform:
        return self._adapter

    async def settle(self) -> None:
        await self.adapter.drain()

    async def rows(self, query: Any) -> list[Any]:
        """What the database holds (as the next process would read it, so also after a shutdown)."""
        from bot.store.db import Database

        assert self.host is not None
        db = Database(self.host.settings.database_url)
        try:
            async with db.read() as conn:
                return list((await conn.execute(query)).all())
        finally:
            await db.dispose()

    # --- the platform, as its users see it ---
    @abstractmethod
    async def open_fake(self) -> None: ...

    @abstractmethod
    async def close_fake(self) -> None: ...

    @abstractmethod
    def platform_values(self) -> dict[str, Any]: ...

    @abstractmethod
    def allowlist(self, user: str) -> dict[str, Any]: ...

    @abstractmethod
    async def send(self, text: str, *, user: str = ALICE, image: bytes | None = None) -> Any:
        """A message from ``user`` in the conversation; returns what ``redeliver`` needs."""

    @abstractmethod
    async def redeliver(self, sent: Any) -> None:
        """The platform delivers the same event again (a retry, a restart)."""

    @abstractmethod
    def transcript(self) -> list[str]:
        """The bot's messages in the conversation as they read now, in order."""

    def messages(self) -> int:
        """How many messages the bot has in the conversation (an empty or status-only one too)."""
        return len(self.transcript())

    @abstractmethod
    def controls(self) -> list[str]:
        """The control data on the bot's newest message that has any."""

    @abstractmethod
    async def click(self, data: str, *, user: str = ALICE) -> None:
        """``user`` clicks the control whose data is ``data`` on the bot's newest message."""

    def downloads(self) -> int:
        """Files the bot fetched from the platform."""
        return 0

    async def until(self, check: Callable[[], object], timeout: float = 15.0) -> Any:
        return await eventually(check, timeout)


class TelegramDriver(Driver):
    """A group: messages mention the bot; answers are edited messages with buttons. Updates
    arrive on the webhook (as Telegram delivers them, redeliveries included)."""

    name = "telegram"
    GROUP = -100777
    USERS = {
        ALICE: {"id": 1001, "is_bot": False, "first_name": "Alice"},
        MALLORY: {"id": 1666, "is_bot": False, "first_name": "Mallory"},
    }

    async def open_fake(self) -> None:
        from tests.fakes.telegram_api import FakeLimits, FakeTelegram

        self.tg = await FakeTelegram(limits=FakeLimits().scaled(SCALE)).start()
        self.tg.add_chat(self.GROUP, "supergroup", title="Marketing")

    async def close_fake(self) -> None:
        if hasattr(self, "http"):
            await self.http.aclose()
        await self.tg.stop()

    HOOK = "https://bot.example.com/telegram/webhook"
    SECRET = "conformance-secret-0123456789"

    def platform_values(self) -> dict[str, Any]:
        return dict(
            TELEGRAM_BOT_TOKEN=self.tg.token,
            TELEGRAM_API_URL=self.tg.api_url,
            TELEGRAM_WEBHOOK_URL=self.HOOK,
            TELEGRAM_WEBHOOK_SECRET=self.SECRET,
        )

    async def start(self, **kw: Any) -> None:
        await super().start(**kw)
        assert self.host is not None and self.host.app is not None
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.host.app), base_url="https://bot.example.com"
        )

    async def _deliver(self, update: dict) -> None:
        response = await self.http.post(
            "/telegram/webhook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": self.SECRET}
        )
        assert response.status_code == 200, response.text

    def allowlist(self, user: str) -> dict[str, Any]:
        return dict(TELEGRAM_ALLOWED_CHATS=str(self.USERS[user]["id"]))

    async def send(self, text: str, *, user: str = ALICE, image: bytes | None = None) -> Any:
        ask = f"@{self.tg.username} {text}"
        entities = [self.tg.mention_entity(ask)]
        if image is None:
            message = self.tg.new_message(self.GROUP, self.USERS[user], ask, entities=entities)
        elif not text:  # a photo with no caption (so no mention either)
            message = self.tg.new_message(
                self.GROUP, self.USERS[user], None, extra={"photo": self.tg.photo_sizes(image)}
            )
        else:
            message = self.tg.new_message(
                self.GROUP,
                self.USERS[user],
                None,
                extra={"photo": self.tg.photo_sizes(image), "caption": ask, "caption_entities": entities},
            )
        update = self.tg.numbered({"message": message})
        await self._deliver(update)
        return update

    async def redeliver(self, sent: Any) -> None:
        await self._deliver(sent)  # the same update, its id included (a webhook retried)

    def _bot_messages(self) -> list[Any]:
        return self.tg.bot_messages(self.GROUP)

    def transcript(self) -> list[str]:
        return [m.text for m in self._bot_messages()]

    def controls(self) -> list[str]:
        for message in reversed(self._bot_messages()):
            markup = message.reply_markup or {}
            data = [b.get("callback_data", "") for row in markup.get("inline_keyboard", []) for b in row]
            if data:
                return data
        return []

    async def click(self, data: str, *, user: str = ALICE) -> None:
        message = next(m for m in reversed(self._bot_messages()) if data in json.dumps(m.reply_markup or {}))
        await self._deliver(
            self.tg.numbered(self.tg.button_press(self.GROUP, message.message_id, self.USERS[user], data))
        )

    def downloads(self) -> int:
        return len(self.tg.calls_to("getFile"))


class SlackDriver(Driver):
    """A channel thread the bot was mentioned in; HTTP events signed as Slack signs them;
    answers posted and edited (buttons), not natively streamed (a stream carries no buttons)."""

    name = "slack"
    CHANNEL = "C0CONFORM1"
    USERS = {ALICE: "U0ALICE01", MALLORY: "U0MALLORY"}

    async def open_fake(self) -> None:
        from tests.fakes.slack_api import FakeSlack

        self.fake = await FakeSlack(window=60 * SCALE, post_interval=SCALE).start()
        self.thread: str | None = None

    async def close_fake(self) -> None:
        if hasattr(self, "http"):
            await self.http.aclose()
        await self.fake.close()

    def platform_values(self) -> dict[str, Any]:
        from tests.fakes.slack_api import BOT_TOKEN, SIGNING_SECRET

        return dict(
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=self.fake.api_url,
            SLACK_NATIVE_STREAMING=False,
        )

    def allowlist(self, user: str) -> dict[str, Any]:
        return dict(SLACK_ALLOWED_USERS=self.USERS[user])

    async def start(self, **kw: Any) -> None:
        await super().start(**kw)
        assert self.host is not None and self.host.app is not None
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.host.app), base_url="http://slack.test")

    async def _post(self, body: bytes, content_type: str, **headers: Any) -> None:
        response = await self.http.post(
            "/slack/events", content=body, headers=self.fake.signed(body, content_type=content_type, **headers)
        )
        assert response.status_code == 200, response.text

    async def send(self, text: str, *, user: str = ALICE, image: bytes | None = None) -> Any:
        from tests.fakes.slack_api import BOT_USER_ID

        files = [self.fake.add_file("photo.png", "image/png", image)] if image is not None else None
        # Every message mentions the bot: the first opens the thread, the others are in it.
        mention = bool(text) or self.thread is None  # a file alone in the thread mentions nobody
        ts, envelope = self.fake.user_message(
            self.CHANNEL,
            f"<@{BOT_USER_ID}> {text}" if mention else text,
            user=self.USERS[user],
            mention=mention,
            files=files,
            thread_ts=self.thread,
        )
        self.thread = self.thread or ts
        await self._post(json.dumps(envelope).encode(), "application/json")
        return envelope

    async def redeliver(self, sent: Any) -> None:
        await self._post(json.dumps(sent).encode(), "application/json", retry_num=1)

    def _replies(self) -> list[Any]:
        return self.fake.bot_replies(self.CHANNEL, self.thread) if self.thread else []

    def transcript(self) -> list[str]:
        # Notices meant for one person come as ephemeral messages in the thread: they read too.
        ephemeral = [e for e in self.fake.ephemerals if self.thread and e.thread_ts == self.thread]
        return [m.text for m in sorted([*self._replies(), *ephemeral], key=lambda m: float(m.ts))]

    def controls(self) -> list[str]:
        for message in reversed(self._replies()):
            values = [
                e.get("value")
                for b in message.blocks
                if b.get("type") == "actions"
                for e in b.get("elements", [])
                if e.get("value")
            ]
            if values:
                return values
        return []

    async def click(self, data: str, *, user: str = ALICE) -> None:
        message = next(m for m in reversed(self._replies()) if data in json.dumps(m.blocks))
        action_id = next(
            e["action_id"]
            for b in message.blocks
            if b.get("type") == "actions"
            for e in b.get("elements", [])
            if e.get("value") == data
        )
        payload = self.fake.block_action(message, action_id, user=self.USERS[user])
        await self._post(self.fake.form_body(payload), "application/x-www-form-urlencoded")

    def downloads(self) -> int:
        return len(self.fake.calls_to("files.download"))


class ConsoleDriver(Driver):
    """`bot chat`'s adapter: lines in, the terminal surface out; files are local paths."""

    name = "console"
    has_downloads = False

    async def open_fake(self) -> None:
        import io

        self.out = io.StringIO()

    async def close_fake(self) -> None:
        return None

    def platform_values(self) -> dict[str, Any]:
        return {}

    def allowlist(self, user: str) -> dict[str, Any]:
        return dict(CONSOLE_ALLOWED_USERS=user)

    @property
    def console(self) -> Any:
        from adapters.console.chat import ConsoleAdapter

        adapter = self.adapter
        assert isinstance(adapter, ConsoleAdapter)
        return adapter

    def _key(self) -> Any:
        from bot.platform.messages import ConversationKey

        return ConversationKey("console", "local", "tty1")

    async def send(self, text: str, *, user: str = ALICE, image: bytes | None = None) -> Any:
        from bot.platform.messages import Author

        files = []
        if image is not None:
            files.append(self.tmp / "photo.png")
            files[0].write_bytes(image)
        event_id = f"line-{len(self.console.surface.shown)}-{text}"
        self.console.send(self._key(), Author(user, user), text, files, event_id=event_id)
        return (user, text, files, event_id)

    async def redeliver(self, sent: Any) -> None:
        from bot.platform.messages import Author

        user, text, files, event_id = sent
        self.console.send(self._key(), Author(user, user), text, files, event_id=event_id)

    def transcript(self) -> list[str]:
        return list(self.console.surface.shown.values())

    def controls(self) -> list[str]:
        from bot.platform.controls import Choice

        for controls in reversed(self.console.surface.controls.values()):
            data = [b.press.encode() for row in controls for b in (row.options if isinstance(row, Choice) else row)]
            if data:
                return data
        return []

    async def click(self, data: str, *, user: str = ALICE) -> None:
        from bot.platform.messages import Author

        self.console.click(self._key(), Author(user, user), data)


class FeishuDriver(Driver):
    """A group whose members @ the bot; events over the long connection (the SDK's frames,
    acknowledged as Feishu expects, pushed again as Feishu does); answers are CardKit cards
    streamed and closed, with buttons whose clicks come back as ``card.action.trigger``."""

    name = "feishu"

    async def open_fake(self) -> None:
        from tests.fakes.feishu_api import FakeFeishu

        self.fake = await FakeFeishu(time_scale=SCALE).start()
        self.users = {ALICE: self.fake.user("Alice"), MALLORY: self.fake.user("Mallory")}
        self.group = self.fake.group_chat("Marketing")

    async def close_fake(self) -> None:
        await self.fake.stop()

    def platform_values(self) -> dict[str, Any]:
        return dict(
            FEISHU_APP_ID=self.fake.app_id, FEISHU_APP_SECRET=self.fake.app_secret, FEISHU_DOMAIN=self.fake.base_url
        )

    def allowlist(self, user: str) -> dict[str, Any]:
        return dict(FEISHU_ALLOWED_USERS=self.users[user].open_id)

    async def start(self, **kw: Any) -> None:
        await super().start(**kw)
        await self.fake.ws.wait_connected()

    async def send(self, text: str, *, user: str = ALICE, image: bytes | None = None) -> Any:
        who, events = self.users[user], self.fake.events
        if image is None:
            _, event = events.text(self.group, who, f"@_user_1 {text}", mentions=[self.fake.bot])
        else:
            _, event = events.post(self.group, who, [f" {text}"], images=[image], mentions=[self.fake.bot])
        delivery = await self.fake.push_event(event)
        assert delivery.acked, delivery
        return event

    async def redeliver(self, sent: Any) -> None:
        assert (await self.fake.push_event(sent)).acked  # the same event, its ids included

    def _bot_messages(self) -> list[Any]:
        """The bot's messages in the group, in order: what everyone sees and, as on Slack, the
        cards for one person (notices meant for one of them read too)."""
        group = self.group.chat_id
        return [m for m in self.fake.messages.values() if m.chat_id == group and m.from_bot]

    def _answers(self) -> list[tuple[Any, str]]:
        """The bot's messages that show answer text, with that text (a card that only says the
        model is thinking shows none yet)."""
        from tests.fakes.feishu_cards import walk_elements

        shown = []
        for message in self._bot_messages():
            card = message.card_json
            if card is None:
                text = message.text
            else:
                answer = next((e for e in walk_elements(card.get("body", {})) if e.get("element_id") == "answer"), None)
                text = answer.get("content", "") if answer else ""
            if text:
                shown.append((message, text))
        return shown

    def transcript(self) -> list[str]:
        return [text for _, text in self._answers()]

    def messages(self) -> int:
        return len(self._bot_messages())

    @staticmethod
    def _data(message: Any) -> list[tuple[str, dict, str | None]]:
        """(control data, the callback value, the option chosen) for every control on ``message``."""
        from tests.fakes.feishu_cards import controls

        found = []
        for control in controls(message.card_json or {}):
            value = control["value"] or {}
            if control["options"]:
                found += [(option, value, option) for option in control["options"]]
            elif value.get("p"):
                found.append((value["p"], value, None))
        return found

    def controls(self) -> list[str]:
        for message, _ in reversed(self._answers()):
            if data := [d for d, _, _ in self._data(message)]:
                return data
        return []

    async def click(self, data: str, *, user: str = ALICE) -> None:
        for message, _ in reversed(self._answers()):
            found = next(((value, option) for d, value, option in self._data(message) if d == data), None)
            if found is not None:
                value, option = found
                event = self.fake.events.card_action(
                    message, self.users[user], value, tag="select_static" if option else "button", option=option
                )
                assert (await self.fake.push_event(event)).acked
                return
        raise AssertionError(f"no control {data!r} on the bot's messages")

    def downloads(self) -> int:
        return len(self.fake.calls_to("im.message_resource.get"))


DRIVERS: dict[str, type[Driver]] = {d.name: d for d in (TelegramDriver, SlackDriver, ConsoleDriver, FeishuDriver)}
