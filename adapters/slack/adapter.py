"""The Slack adapter: bolt's AsyncApp, its listeners, and the two transports.

Every listener returns at once (bolt acks the event; the work runs in a task after the
ack), and nothing is looked up before the ack: the bot's identity comes from one
auth.test at start. Retried events are answered once through the core's durable
``claim_event`` on the envelope's event_id.
"""
from __future__ import annotations

import asyncio
import logging
import re
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
from adapters.slack.fallbacks import register_fallbacks
from adapters.slack.files import FileFetcher
from adapters.slack.http import EventsEndpoint
from adapters.slack.normalise import Identity, Route, is_from_bot, route_mention, route_message
from adapters.slack.surface import SlackRuntime, SlackSurface, SlackThread
from bot.messages import Author, ConversationKey, IncomingMessage
from bot.surface import RateLimited, Write

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from bot.config import Settings
    from bot.core.service import ChatService

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
THREAD_CONTEXT_LIMIT = 50  # earlier messages read when the bot is first called into a thread
STOP_GRACE = 30.0  # seconds in-flight answers get to finish at shutdown


class SlackAdapter:
    name = "slack"

    def __init__(self, settings: "Settings", service: "ChatService") -> None:
        assert settings.slack_bot_token is not None
        self.settings = settings
        self.service = service
        self._token = settings.slack_bot_token.get_secret_value()
        self._app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else None
        self._secret = (settings.slack_signing_secret.get_secret_value()
                        if settings.slack_signing_secret else None)
        second = settings.slack_rate_window / 60.0
        self.budgets = SlackBudgets(settings.slack_rate_window)
        self.runtime_options = dict(edit_interval=1.5 * second, stream_interval=1.0 * second,
                                    stream_max_age=settings.slack_stream_max_age,
                                    native_streaming=settings.slack_native_streaming)
        self.me: Identity | None = None
        self.app: AsyncApp | None = None
        self.runtime: SlackRuntime | None = None
        self._session: aiohttp.ClientSession | None = None
        self._http_handler: Any = None
        self._socket: Any = None
        self._tasks: set[asyncio.Task] = set()
        self._names: dict[str, str] = {}
        self._assistant_threads: set[tuple[str, str]] = set()

    # --- PlatformAdapter ---
    def routes(self) -> list["BaseRoute"]:
        if self._app_token:
            return []
        from starlette.routing import Route as StarletteRoute

        return [StarletteRoute(EVENTS_PATH, self._http_endpoint, methods=["POST"])]

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        client = AsyncWebClient(token=self._token, base_url=self.settings.slack_api_url,
                                session=self._session)
        try:
            auth = await client.auth_test()
        except SlackApiError as exc:
            await self._session.close()
            raise RuntimeError(f"Slack rejected SLACK_BOT_TOKEN ({error_code(exc)})") from None
        self.me = Identity(team_id=auth["team_id"], user_id=auth["user_id"],
                           bot_id=auth.get("bot_id") or "", name=auth.get("user") or "bot")
        api = SlackApi(client, self.budgets)
        self.runtime = SlackRuntime(api, **self.runtime_options)
        self.files = FileFetcher(api, self._session, self._token)
        self.assistant = AssistantView(api)
        self.app = self._build_app()
        self._spawn(self._repair_recovered())
        if self._app_token:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            socket_client = AsyncWebClient(base_url=self.settings.slack_api_url, session=self._session)
            self._socket = AsyncSocketModeHandler(self.app, self._app_token, web_client=socket_client)
            await self._socket.connect_async()
            log.info("slack: connected over Socket Mode as %s", self.me.name)
        else:
            self._http_handler = EventsEndpoint(self.app, self._secret or "", self.settings.slack_max_body)
            log.info("slack: receiving events at %s as %s", EVENTS_PATH, self.me.name)

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        self._http_handler = None
        if self._tasks:
            done, pending = await asyncio.wait(set(self._tasks), timeout=STOP_GRACE)
            for task in pending:
                task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- transport ---
    async def _http_endpoint(self, request: "Request") -> "Response":
        from starlette.responses import PlainTextResponse

        if self._http_handler is None:
            return PlainTextResponse("starting", status_code=503)
        return await self._http_handler.handle(request)

    def _build_app(self) -> AsyncApp:
        me = self.me
        assert me is not None

        async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
            # Identity cached from auth.test at start: no call per request.
            return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id or me.team_id,
                                   bot_token=self._token, bot_id=me.bot_id, bot_user_id=me.user_id)

        app = AsyncApp(
            name="chatbot", logger=logging.getLogger("slack_bolt"),
            client=AsyncWebClient(base_url=self.settings.slack_api_url, session=self._session),
            authorize=authorize, signing_secret=self._secret or "",
            request_verification_enabled=not self._app_token,
        )
        app.event("app_mention")(self._on_mention)
        app.event("message")(self._on_message)
        app.event("assistant_thread_started")(self._on_thread_started)
        app.event("assistant_thread_context_changed")(self._ignore)
        app.event("app_home_opened")(self._on_home_opened)
        app.event("app_context_changed")(self._ignore)
        app.action(re.compile(r"^answer_"))(self._on_action)
        for name in commands.COMMANDS:
            app.command(name)(self._on_command)
        app.shortcut(render.STOP_SHORTCUT)(self._on_stop_shortcut)
        register_fallbacks(app)  # last: acknowledges whatever no listener above took
        return app

    # --- listeners (return at once; bolt acks) ---
    async def _ignore(self) -> None:
        return None

    async def _on_mention(self, body: dict, event: dict, request: Any) -> None:
        assert self.me is not None
        route = route_mention(event, self._team(body), self.me)
        if route is not None:
            self._spawn(self._process(body, route, request))

    async def _on_message(self, body: dict, event: dict, request: Any) -> None:
        assert self.me is not None
        route = route_message(event, self._team(body), self.me)
        if route is not None:
            self._spawn(self._process(body, route, request))

    async def _on_thread_started(self, body: dict, event: dict) -> None:
        thread = event.get("assistant_thread") or {}
        channel, ts = thread.get("channel_id"), thread.get("thread_ts")
        if channel and ts:
            self._assistant_threads.add((channel, ts))
            self._spawn(self.assistant.thread_started(self._team(body), channel, ts))

    async def _on_home_opened(self, body: dict, event: dict) -> None:
        if event.get("tab") == "messages" and event.get("channel"):
            self._spawn(self.assistant.thread_started(self._team(body), event["channel"], None))

    async def _on_action(self, ack: Any, body: dict, action: dict, respond: Any) -> None:
        await ack()
        self._spawn(self._act(body, action, respond))

    async def _on_command(self, ack: Any, body: dict, respond: Any) -> None:
        await ack()
        command = commands.parse(body)
        if command is not None:
            self._spawn(self._run_command(command, respond))

    async def _on_stop_shortcut(self, ack: Any, body: dict) -> None:
        await ack()
        assert self.runtime is not None
        channel = (body.get("channel") or {}).get("id", "")
        ts = (body.get("message") or {}).get("ts") or body.get("message_ts", "")
        turn_id = self.runtime.turn_of(channel, ts)
        if turn_id is not None:
            self._spawn(self.service.stop(turn_id))

    # --- work after the ack ---
    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("slack task failed", exc_info=task.exception())

    def _team(self, body: dict) -> str:
        assert self.me is not None
        team = body.get("team_id")
        if not team:
            raw = body.get("team")
            team = raw.get("id") if isinstance(raw, dict) else raw
        return team or self.me.team_id

    async def _process(self, body: dict, route: Route, request: Any) -> None:
        event_id = body.get("event_id") or f"{route.key.chat}:{route.ts}"
        if not await self.service.claim_event("slack", event_id):
            retry = _header(request, "x-slack-retry-num")
            log.info("slack: event %s already handled%s", event_id, f" (retry {retry})" if retry else "")
            return
        key = route.key
        known = await self.service.has_conversation(key)
        if route.mode != "answer" and not known:
            return  # a thread the bot was never called into
        if not known and route.thread_ts != route.ts and not key.chat.startswith("D"):
            await self._read_thread_context(route)
        attachments, notes = await self.files.fetch_all(key.workspace, list(route.files))
        msg = IncomingMessage(
            key=key, author=Author(route.user, await self._name(key.workspace, route.user)),
            text=route.text, message_id=route.ts, attachments=attachments,
            addressed=route.mode != "context", group=route.group, notes=notes)
        if key.chat.startswith("D") and (not known or (key.chat, key.thread) in self._assistant_threads):
            self._spawn(self.assistant.title(key.workspace, key.chat, key.thread, route.text))
        await self.service.handle(msg, self._surface(key.workspace, key.chat, route.thread_ts,
                                                     route.user, route.user_team))

    def _surface(self, team: str, channel: str, thread_ts: str, user: str, user_team: str = "") -> SlackSurface:
        assert self.runtime is not None
        return SlackSurface(self.runtime, SlackThread(team, channel, thread_ts, user, user_team or team))

    async def _read_thread_context(self, route: Route) -> None:
        """Called into an existing thread: its earlier messages become shared context."""
        assert self.runtime is not None and self.me is not None
        key = route.key
        try:
            resp = await self.runtime.api.call_retrying(
                key.workspace, "conversations.replies", channel=key.chat, ts=route.thread_ts,
                limit=THREAD_CONTEXT_LIMIT + 1)
        except (SlackApiError, RateLimited) as exc:
            log.info("slack: could not read thread %s: %s", route.thread_ts, exc)
            return
        earlier = [m for m in resp.get("messages", [])
                   if float(m.get("ts", 0)) < float(route.ts) and not is_from_bot(m, self.me)]
        for m in earlier[-THREAD_CONTEXT_LIMIT:]:
            text = m.get("text", "")
            if not text.strip():
                continue
            await self.service.handle(IncomingMessage(
                key=key, author=Author(m["user"], await self._name(key.workspace, m["user"])),
                text=text, message_id=m["ts"], addressed=False, group=True), self._surface(
                key.workspace, key.chat, route.thread_ts, route.user))

    async def _name(self, team: str, user: str) -> str:
        """Display names for attribution, cached (looked up after the ack, never before)."""
        name = self._names.get(user)
        if name is not None:
            return name
        assert self.runtime is not None
        name = user
        try:
            resp = await self.runtime.api.call_retrying(team, "users.info", user=user)
            profile = resp["user"].get("profile") or {}
            name = profile.get("display_name") or profile.get("real_name") or resp["user"].get("name") or user
        except (SlackApiError, RateLimited, KeyError) as exc:
            log.info("slack: no name for %s: %s", user, exc)
        if len(self._names) > 50_000:
            self._names.clear()
        self._names[user] = name
        return name

    async def _act(self, body: dict, action: dict, respond: Any) -> None:
        action_id = action.get("action_id", "")
        user = (body.get("user") or {}).get("id", "")
        team = self._team(body)
        if action_id.startswith(render.REFINE):
            await self._refine(body, action, team, user)
            return
        try:
            turn_id = int(action.get("value") or 0)
        except ValueError:
            return
        if action_id == render.STOP:
            await self.service.stop(turn_id)
            return
        if action_id in (render.FEEDBACK_UP, render.FEEDBACK_DOWN):
            value = 1 if action_id == render.FEEDBACK_UP else -1
            await self.service.feedback(turn_id, user, value)
            try:
                await respond(text="Thanks — your feedback was saved." if value > 0
                              else "Thanks — noted. Press Regenerate for another try.",
                              response_type="ephemeral", replace_original=False)
            except Exception as exc:  # noqa: BLE001 - the feedback itself is stored
                log.info("slack: feedback reply failed: %s", exc)
            return
        if action_id == render.REGENERATE:
            where = _action_thread(body)
            if where is not None:
                await self.service.regenerate(turn_id, self._surface(team, *where, user))

    async def _refine(self, body: dict, action: dict, team: str, user: str) -> None:
        """A refinement picked from a variant's select: answered in the same thread."""
        chosen = render.parse_refine_value((action.get("selected_option") or {}).get("value", ""))
        where = _action_thread(body)
        if chosen is None or where is None:
            log.info("slack: ignored a refinement with value %r", action.get("selected_option"))
            return
        turn_id, variant, name = chosen
        await self.service.refine(turn_id, variant, name, self._surface(team, *where, user),
                                  author=Author(user, await self._name(team, user)))

    async def _run_command(self, command: commands.SlashCommand, respond: Any) -> None:
        """A slash command: an anchor message in the channel, the core's answer in its thread."""
        assert self.runtime is not None and self.me is not None
        if command.trigger_id and not await self.service.claim_event("slack", f"command:{command.trigger_id}"):
            return
        team = command.team or self.me.team_id
        try:
            resp = await self.runtime.api.call_retrying(team, "chat.postMessage", channel=command.channel,
                                                        text=command.anchor_text())
        except (SlackApiError, RateLimited) as exc:
            log.info("slack: no thread for %s in %s: %s", command.command, command.channel, exc)
            bare = command.command.lstrip("/")
            try:
                await respond(text=commands.CANT_POST.format(command=command.command, name=self.me.name,
                                                             bare=bare), response_type="ephemeral")
            except Exception as reply_exc:  # noqa: BLE001 - nothing else can reach the user
                log.info("slack: command reply failed: %s", reply_exc)
            return
        anchor = str(resp["ts"])
        key = ConversationKey("slack", team, command.channel, anchor)
        author = Author(command.user, await self._name(team, command.user))
        surface = self._surface(team, command.channel, anchor, command.user)
        for text in command.core_texts():
            await self.service.handle(IncomingMessage(key=key, author=author, text=text, message_id=anchor,
                                                      group=not command.is_dm), surface)

    async def _repair_recovered(self) -> None:
        """Answers a restart cut off: rewrite their messages with the text that was saved."""
        assert self.runtime is not None
        api = self.runtime.api
        for answer in await self.service.take_recovered("slack"):
            key = answer.key
            pages = render.split_answer(answer.text)
            ids = list(answer.message_ids)
            count = max(len(ids), len(pages))
            for i in range(count):
                text = pages[i] if i < len(pages) else "…"
                # The last page gets Regenerate and feedback: the user can ask again.
                payload = render.payload(text, Write(answer.turn_id, final=True, last_page=i == count - 1))
                try:
                    if i < len(ids):
                        await self._rewrite(key, ids[i], payload.kwargs())
                    else:
                        await api.call_retrying(key.workspace, "chat.postMessage", channel=key.chat,
                                                thread_ts=key.thread or None, **payload.kwargs())
                except (SlackApiError, RateLimited) as exc:
                    log.warning("slack: could not repair an answer in %s: %s", key.chat, exc)

    async def _rewrite(self, key: ConversationKey, ts: str, content: dict) -> None:
        """chat.update one message; a native stream still open on Slack's side is stopped first
        (a streaming message can't be updated; one that expired or was posted can)."""
        assert self.runtime is not None
        api = self.runtime.api
        try:
            await api.call_retrying(key.workspace, "chat.update", channel=key.chat, ts=ts, **content)
            return
        except SlackApiError as exc:
            if error_code(exc) in _GONE:
                raise
        try:
            await api.call_retrying(key.workspace, "chat.stopStream", channel=key.chat, ts=ts)
        except SlackApiError as exc:
            log.info("slack: stopStream before repair: %s", error_code(exc))
        await api.call_retrying(key.workspace, "chat.update", channel=key.chat, ts=ts, **content)


# chat.update errors that no stopStream can fix.
_GONE = {"message_not_found", "channel_not_found", "not_in_channel", "is_archived", "msg_too_long",
         "invalid_blocks", "no_text"}


def _action_thread(body: dict) -> tuple[str, str] | None:
    """(channel, thread_ts) of the message a button or select sits on."""
    message = body.get("message") or {}
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    thread_ts = message.get("thread_ts") or container.get("thread_ts") or message.get("ts") \
        or container.get("message_ts")
    return (channel, thread_ts) if channel and thread_ts else None


def _header(request: Any, name: str) -> str | None:
    headers = getattr(request, "headers", None) or {}
    value = headers.get(name)
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return value
