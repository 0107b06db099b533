"""The Slack adapter: bolt's AsyncApp, its listeners, and the two transports.

Every listener returns at once (bolt acks the event) after handing the event to the inbox,
which takes its place in line, dedupes it on the envelope's event_id (Slack retries), and
decides access before anything is downloaded or looked up. Nothing is looked up before the
ack: the bot's identity comes from one auth.test at start.
"""

from __future__ import annotations

import logging
import re
from functools import partial
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import commands, render
from adapters.slack.api import SlackApi, error_code
from adapters.slack.assistant import AssistantView
from adapters.slack.budgets import SlackBudgets
from adapters.slack.controls import ACTION_PREFIX, data_of
from adapters.slack.ephemeral import EphemeralSurface, Respond
from adapters.slack.fallbacks import register_fallbacks
from adapters.slack.files import FileFetcher
from adapters.slack.http import EventsEndpoint
from adapters.slack.normalise import BotIdentity, Route, is_from_bot, route_mention, route_message
from adapters.slack.settings import SlackSettings
from adapters.slack.surface import SlackOutlet, SlackSurface, SlackThread
from bot.platform import (
    Ack,
    Arrival,
    Author,
    Click,
    ConversationKey,
    Health,
    Inbox,
    IncomingMessage,
    Membership,
    Moved,
    Platform,
    RateLimited,
    stop_press,
)

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
# slack-sdk's Web API clients log through this logger (unless given another one).
SDK_LOGGER = "slack_sdk.web.async_base_client"
THREAD_CONTEXT_LIMIT = 50  # earlier messages read when the bot is first called into a thread


class SlackAdapter(Platform):
    name = "slack"
    settings: SlackSettings

    def __init__(self, settings: SlackSettings, inbox: Inbox) -> None:
        assert settings.bot_token is not None
        super().__init__(settings, inbox)
        self._token = settings.bot_token.get_secret_value()
        self._app_token = settings.app_token.get_secret_value() if settings.app_token else None
        self._secret = settings.signing_secret.get_secret_value() if settings.signing_secret else None
        second = inbox.time_scale  # one of Slack's seconds, in ours
        self.budgets = SlackBudgets(60.0 * second, inbox.counters(self._token))
        self._outlet_for = partial(
            SlackOutlet,
            edit_interval=1.5 * second,
            stream_interval=1.0 * second,
            stream_max_age=settings.stream_max_age * second,
            native_streaming=settings.native_streaming,
        )
        self.me: BotIdentity | None = None
        self.app: AsyncApp | None = None
        self.outlet: SlackOutlet | None = None
        self._session: aiohttp.ClientSession | None = None
        self._http_handler: Any = None
        self._socket: Any = None
        self._names: dict[str, str] = {}
        self._assistant_threads: set[tuple[str, str]] = set()

    # --- Platform ---
    def routes(self) -> list[BaseRoute]:
        if self._app_token:
            return []
        from starlette.routing import Route as StarletteRoute

        return [StarletteRoute(EVENTS_PATH, self._http_endpoint, methods=["POST"])]

    async def start(self) -> None:
        _quiet_sdk_debug()
        self._session = aiohttp.ClientSession()
        client = AsyncWebClient(token=self._token, base_url=self.settings.api_url, session=self._session)
        try:
            auth = await client.auth_test()
        except SlackApiError as exc:
            await self._session.close()
            raise RuntimeError(f"Slack rejected SLACK_BOT_TOKEN ({error_code(exc)})") from None
        self.me = BotIdentity(
            team_id=auth["team_id"],
            user_id=auth["user_id"],
            bot_id=auth.get("bot_id") or "",
            name=auth.get("user") or "bot",
            commands=frozenset(c.name for c in self.inbox.commands),
        )
        api = SlackApi(client, self.budgets)
        self.outlet = self._outlet_for(api, session=self._session)
        self.files = FileFetcher(api, self._session, self._token)
        self.assistant = AssistantView(api)
        self.app = self._build_app()
        self.inbox.attach(self)
        if self._app_token:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            socket_client = AsyncWebClient(base_url=self.settings.api_url, session=self._session)
            self._socket = AsyncSocketModeHandler(self.app, self._app_token, web_client=socket_client)
            await self._socket.connect_async()
            log.info("slack: connected over Socket Mode as %s", self.me.name)
        else:
            self._http_handler = EventsEndpoint(self.app, self._secret or "", self.settings.max_body)
            log.info("slack: receiving events at %s as %s", EVENTS_PATH, self.me.name)

    def health(self) -> Health:
        """Identified by auth.test and receiving events (for /readyz and the admin page)."""
        if self.me is None:
            return Health(False, "not started")
        if self._socket is not None:  # the SDK reconnects by itself; this is its live session
            session = self._socket.client.current_session
            connected = session is not None and not session.closed
            return Health(connected, "Socket Mode" if connected else "Socket Mode: reconnecting")
        return Health(self._http_handler is not None, f"HTTP events at {EVENTS_PATH}")

    async def pause(self) -> None:
        """Take no new events (shutdown): Socket Mode disconnects, so Slack sends them to
        another connection; answers in flight keep writing."""
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None

    async def stop(self) -> None:
        await self.pause()
        self._http_handler = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- transport ---
    async def _http_endpoint(self, request: Request) -> Response:
        from starlette.responses import PlainTextResponse

        if self._http_handler is None:
            return PlainTextResponse("starting", status_code=503)
        return await self._http_handler.handle(request)

    def _build_app(self) -> AsyncApp:
        me = self.me
        assert me is not None

        async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
            # Identity cached from auth.test at start: no call per request.
            return AuthorizeResult(
                enterprise_id=enterprise_id,
                team_id=team_id or me.team_id,
                bot_token=self._token,
                bot_id=me.bot_id,
                bot_user_id=me.user_id,
            )

        app = AsyncApp(
            name="chatbot",
            logger=logging.getLogger("slack_bolt"),
            client=AsyncWebClient(base_url=self.settings.api_url, session=self._session),
            authorize=authorize,
            signing_secret=self._secret or "",
            request_verification_enabled=not self._app_token,
            # Listeners only hand the event to the inbox and return: run them before the
            # response, so an acknowledged event is always already in line.
            process_before_response=True,
        )
        app.event("app_mention")(self._on_mention)
        app.event("message")(self._on_message)
        app.event("assistant_thread_started")(self._on_thread_started)
        app.event("assistant_thread_context_changed")(self._ignore)
        app.event("app_home_opened")(self._on_home_opened)
        app.event("app_context_changed")(self._ignore)
        app.event("channel_left")(self._on_left)  # the bot was removed from a channel
        app.event("group_left")(self._on_left)
        app.action(re.compile(rf"^{ACTION_PREFIX}"))(self._on_action)
        for command in self.inbox.commands:  # the registered ones; the fallback answers others
            app.command(f"/{command.name}")(self._on_command)
            if command.on_message:
                app.shortcut(commands.shortcut_id(command.name))(self._on_message_shortcut)
        app.shortcut(render.STOP_SHORTCUT)(self._on_stop_shortcut)
        register_fallbacks(app, self.inbox.unknown_command)  # last: acknowledges what nothing above took
        return app

    # --- listeners (hand the event in and return at once; bolt acks) ---
    async def _ignore(self) -> None:
        return None

    async def _on_mention(self, body: dict, event: dict) -> None:
        assert self.me is not None
        self._receive(body, route_mention(event, self._team(body), self.me))

    async def _on_message(self, body: dict, event: dict) -> None:
        assert self.me is not None
        self._receive(body, route_message(event, self._team(body), self.me))

    def _receive(self, body: dict, route: Route | None) -> None:
        if route is None:
            return
        key = route.key
        event_id = body.get("event_id") or f"{key.chat}:{route.ts}"
        # A follow-up in a thread may not be ours at all (build looks): refuse it silently.
        arrival = Arrival(
            key,
            event_id,
            Author(route.user, route.user),
            self._surface(key.workspace, key.chat, route.thread_ts, route.user, route.user_team),
            addressed=route.mode == "answer",
        )
        self.inbox.receive(arrival, lambda: self._build(route))

    async def _on_thread_started(self, body: dict, event: dict) -> None:
        thread = event.get("assistant_thread") or {}
        channel, ts = thread.get("channel_id"), thread.get("thread_ts")
        if channel and ts:
            self._assistant_threads.add((channel, ts))
            self.inbox.spawn(self.assistant.thread_started(self._team(body), channel, ts), name="suggested prompts")

    async def _on_left(self, body: dict, event: dict) -> None:
        if event.get("channel"):
            self.inbox.membership(
                self._team(body), event["channel"], Membership.LEFT, event_id=body.get("event_id") or ""
            )

    async def _on_home_opened(self, body: dict, event: dict) -> None:
        if event.get("tab") == "messages" and event.get("channel"):
            self.inbox.spawn(
                self.assistant.thread_started(self._team(body), event["channel"], None), name="suggested prompts"
            )

    async def _on_action(self, ack: Any, body: dict, action: dict, respond: Respond) -> None:
        await ack()
        data, where = data_of(action), _action_thread(body)
        if data is None or where is None:
            log.info("slack: ignored an action %r", action.get("action_id"))
            return
        user = (body.get("user") or {}).get("id", "")
        self.inbox.spawn(self._click(self._team(body), where, user, data, respond), name="click")

    async def _on_command(self, ack: Any, body: dict, respond: Respond) -> None:
        await ack()
        command = commands.parse(body)
        if command is None or self.me is None:
            return
        team = command.team or self.me.team_id
        arrival = Arrival(
            ConversationKey("slack", team, command.channel, ""),
            f"command:{command.trigger_id}" if command.trigger_id else "",
            Author(command.user, command.user),
            EphemeralSurface(respond),
        )
        self.inbox.receive(arrival, lambda: self._build_command(command, team, respond))

    async def _on_message_shortcut(self, ack: Any, body: dict, respond: Respond) -> None:
        """A core command picked from a message's ⋯ menu (/check on a teammate's draft)."""
        await ack()
        shortcut = commands.parse_shortcut(body)
        if shortcut is None or self.me is None:
            return
        team = shortcut.team or self.me.team_id
        # The channel's command place, as for slash commands: the message's own thread is not
        # made the bot's (it would then answer every reply there).
        key = ConversationKey("slack", team, shortcut.channel, "")
        arrival = Arrival(
            key,
            f"shortcut:{shortcut.trigger_id}" if shortcut.trigger_id else "",
            Author(shortcut.user, shortcut.user),
            EphemeralSurface(respond),
        )
        self.inbox.receive(arrival, lambda: self._build_shortcut(shortcut, key))

    async def _on_stop_shortcut(self, ack: Any, body: dict, respond: Respond) -> None:
        """Stop on the message's menu: native streams can't carry a Stop button."""
        await ack()
        where = _action_thread(body)
        user = (body.get("user") or {}).get("id", "")
        if where is not None:
            self.inbox.spawn(
                self._click(self._team(body), where, user, stop_press().encode(), respond), name="stop shortcut"
            )

    # --- work after the ack ---
    def _team(self, body: dict) -> str:
        assert self.me is not None
        team = body.get("team_id")
        if not team:
            raw = body.get("team")
            team = raw.get("id") if isinstance(raw, dict) else raw
        return team or self.me.team_id

    async def _build(self, route: Route) -> IncomingMessage | None:
        """After access was granted: thread context, files, the author's name."""
        key = route.key
        known = await self.inbox.known(key)
        if route.mode != "answer" and not known:
            return None  # a thread the bot was never called into
        if not known and route.thread_ts != route.ts and not key.chat.startswith("D"):
            await self._read_thread_context(route)
        attachments, notes = await self.files.fetch_all(key.workspace, list(route.files))
        if key.chat.startswith("D") and (not known or (key.chat, key.thread) in self._assistant_threads):
            self.inbox.spawn(self.assistant.title(key.workspace, key.chat, key.thread, route.text), name="title")
        return IncomingMessage(
            key=key,
            author=Author(route.user, await self._name(key.workspace, route.user)),
            text=route.text,
            message_id=route.ts,
            attachments=attachments,
            addressed=route.mode != "context",
            group=route.group,
            notes=notes,
        )

    async def _build_command(self, command: commands.SlashCommand, team: str, respond: Respond) -> Moved | None:
        """A slash command: an anchor message in the channel, the core's answer in its thread."""
        assert self.outlet is not None and self.me is not None
        try:
            resp = await self.outlet.api.call_retrying(
                team, "chat.postMessage", channel=command.channel, text=command.anchor_text()
            )
        except (SlackApiError, RateLimited) as exc:
            log.info("slack: no thread for %s in %s: %s", command.command, command.channel, exc)
            bare = command.command.lstrip("/")
            await self.inbox.notify(
                EphemeralSurface(respond),
                commands.CANT_POST.format(command=command.command, name=self.me.name, bare=bare),
            )
            return None
        anchor = str(resp["ts"])
        key = ConversationKey("slack", team, command.channel, anchor)
        author = Author(command.user, await self._name(team, command.user))
        return Moved(
            IncomingMessage(key=key, author=author, text=command.core_text, message_id=anchor, group=not command.is_dm),
            self._surface(team, command.channel, anchor, command.user),
        )

    async def _build_shortcut(self, shortcut: commands.MessageShortcut, key: ConversationKey) -> Moved:
        """The command, with the picked message as what it works on; answered in that
        message's thread, to the person who picked it alone."""
        assert self.outlet is not None
        message = IncomingMessage(
            key=key,
            author=Author(shortcut.user, await self._name(key.workspace, shortcut.user)),
            text=f"/{shortcut.command}",
            message_id=f"shortcut:{shortcut.trigger_id}",
            group=not shortcut.is_dm,
            quoted=shortcut.text,
            quoted_in=ConversationKey("slack", key.workspace, shortcut.channel, shortcut.thread_ts),
        )
        thread = SlackThread(key.workspace, shortcut.channel, shortcut.thread_ts, shortcut.user, personal=True)
        return Moved(message, SlackSurface(self.outlet, thread))

    async def _click(self, team: str, where: tuple[str, str], user: str, data: str, respond: Respond) -> None:
        async def acknowledge(ack: Ack) -> None:
            if ack.personal:  # feedback heard, or a refusal: for the clicker alone
                await self.inbox.notify(EphemeralSurface(respond), ack.text)

        click = Click(data, Author(user, await self._name(team, user)), ConversationKey("slack", team, *where))
        await self.inbox.click(click, self._surface(team, *where, user), acknowledge)

    def _surface(self, team: str, channel: str, thread_ts: str, user: str, user_team: str = "") -> SlackSurface:
        assert self.outlet is not None
        return SlackSurface(self.outlet, SlackThread(team, channel, thread_ts, user, user_team or team))

    # --- the core's view ---
    def surface_for(self, key: ConversationKey, *, reply_to: str = "", user: str = "") -> SlackSurface | None:
        if self.outlet is None or key.platform != "slack":
            return None
        return self._surface(key.workspace, key.chat, key.thread or reply_to, user)

    async def _read_thread_context(self, route: Route) -> None:
        """Called into an existing thread: its earlier messages become shared context."""
        assert self.outlet is not None and self.me is not None
        key = route.key
        try:
            resp = await self.outlet.api.call_retrying(
                key.workspace,
                "conversations.replies",
                channel=key.chat,
                ts=route.thread_ts,
                limit=THREAD_CONTEXT_LIMIT + 1,
            )
        except (SlackApiError, RateLimited) as exc:
            log.info("slack: could not read thread %s: %s", route.thread_ts, exc)
            return
        messages: list[dict[str, Any]] = resp.get("messages", [])
        earlier = [m for m in messages if float(m.get("ts", 0)) < float(route.ts) and not is_from_bot(m, self.me)]
        for m in earlier[-THREAD_CONTEXT_LIMIT:]:
            text = m.get("text", "")
            if not text.strip():
                continue
            await self.inbox.record(
                IncomingMessage(
                    key=key,
                    author=Author(m["user"], await self._name(key.workspace, m["user"])),
                    text=text,
                    message_id=m["ts"],
                    addressed=False,
                    group=True,
                )
            )

    async def _name(self, team: str, user: str) -> str:
        """Display names for attribution, cached (looked up after the ack, never before)."""
        name = self._names.get(user)
        if name is not None:
            return name
        assert self.outlet is not None
        name = user
        try:
            resp = await self.outlet.api.call_retrying(team, "users.info", user=user)
            profile = resp["user"].get("profile") or {}
            name = profile.get("display_name") or profile.get("real_name") or resp["user"].get("name") or user
        except (SlackApiError, RateLimited, KeyError) as exc:
            log.info("slack: no name for %s: %s", user, exc)
        if len(self._names) > 50_000:
            self._names.clear()
        self._names[user] = name
        return name


def _action_thread(body: dict) -> tuple[str, str] | None:
    """(channel, thread_ts) of the message a button or select sits on."""
    message = body.get("message") or {}
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    thread_ts = (
        message.get("thread_ts") or container.get("thread_ts") or message.get("ts") or container.get("message_ts")
    )
    return (channel, thread_ts) if channel and thread_ts else None


_sdk_level: int | None = None  # the level _quiet_sdk_debug last gave slack-sdk's logger


def _quiet_sdk_debug() -> None:
    """slack-sdk builds its debug lines (every request's parameters, every response's body)
    whenever its logger's *own* level is unset, before logging filters them out: give it the
    level in effect now (logging is configured), so it does that only when debugging. Done
    again at every start, unless someone else set a level of their own."""
    global _sdk_level
    logger = logging.getLogger(SDK_LOGGER)
    if logger.level not in (logging.NOTSET, _sdk_level):
        return
    logger.setLevel(logging.NOTSET)
    _sdk_level = logger.getEffectiveLevel()
    logger.setLevel(_sdk_level)
