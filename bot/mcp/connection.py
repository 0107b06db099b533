"""One MCP server: connected at start, watched, reconnected after a failure, its tools kept
current. Built on the official ``mcp`` SDK's client (1.x: it speaks HTTP through httpx,
which the bot already uses; see docs/tools.md for why not 2.x).

Everything the SDK opens (the stdio process or the HTTP client, the session and their anyio
task groups) is entered and left in one supervising task per server, as anyio requires;
calls come from the turns' own tasks through the live session. A server that cannot be
reached is retried with growing pauses (1 s … 60 s); one that crashes mid-call fails that
call (the model gets a tool error) and is started again. ``notifications/tools/list_changed``
makes the supervisor list the tools again; a ping every ``ping_interval`` notices a server
that died while idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TextIO

import anyio

from bot.mcp.names import model_name
from bot.mcp.servers_config import ServerConfig
from bot.mcp.untrusted import strip_hidden
from bot.tools.registry import ToolError

if TYPE_CHECKING:
    from mcp import ClientSession

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0
MAX_PAGES = 50  # tools/list pages read at most (a server that pages for ever is cut off)
MAX_DESCRIPTION = 1024  # characters of a tool's description the model gets
MAX_STDERR_LINE = 1000  # characters of one line a stdio server writes to stderr that are logged


class ServerState(StrEnum):
    STARTING = "starting"
    READY = "ready"
    RECONNECTING = "reconnecting"  # was ready; lost; trying again
    FAILED = "failed"  # never connected yet; trying again
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class RemoteTool:
    """A tool as the server describes it, and the name the model calls it by."""

    server: str
    name: str  # the server's own name
    model_name: str  # <server>__<tool>
    title: str
    description: str
    schema: dict[str, Any]
    read_only: bool  # ToolAnnotations.readOnlyHint (a hint: the server's word)
    destructive: bool  # ToolAnnotations.destructiveHint (MCP's default is true when not read-only)

    @property
    def label(self) -> str:
        return f"{self.server} · {self.title or self.name}"


class CallFailed(ToolError):
    """A call that did not produce a result; ``outcome`` is what the call log records."""

    def __init__(self, message: str, outcome: str) -> None:
        super().__init__(message)
        self.outcome = outcome


class ConnectionLost(Exception):
    pass


class McpServer:
    def __init__(
        self,
        config: ServerConfig,
        *,
        ping_interval: float = 15.0,
        environ: Mapping[str, str] | None = None,
        on_tools: Callable[[McpServer], None] | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.ping_interval = ping_interval
        self.environ = os.environ if environ is None else environ
        self.on_tools = on_tools
        self.state = ServerState.STARTING
        self.error = ""
        self.tools: dict[str, RemoteTool] = {}  # by model name
        self.hidden_tools: list[str] = []  # listed by the server, left out by include/exclude
        self.connected_at: float | None = None
        self.connects = 0  # successful connections (restarts = connects - 1)
        self._session: ClientSession | None = None
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._refresh = False
        self._lost = ""
        self._ready = asyncio.Event()
        self._attempted = asyncio.Event()  # the first attempt ended, one way or the other
        self._stopping = False

    # --- lifecycle ---
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name=f"mcp-{self.name}")

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 10)
        self.state = ServerState.STOPPED
        self._session = None

    async def stop_listing(self) -> None:
        """Stop, keeping the state and tools seen (``bot mcp list`` reports them afterwards)."""
        state = self.state
        await self.stop()
        self.state = state

    async def wait_attempted(self, timeout: float) -> bool:
        """Return once the first connection attempt ended (True when the server is ready)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._attempted.wait(), timeout)
        return self.state is ServerState.READY

    async def wait_ready(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)
        return self.state is ServerState.READY

    @property
    def ready(self) -> bool:
        return self.state is ServerState.READY and self._session is not None

    def lost(self, reason: str) -> None:
        """A call saw the connection end: reconnect now rather than at the next ping."""
        if not self._lost:
            self._lost = reason
        if self.state is ServerState.READY:  # calls from now on are told at once, not sent
            self.state, self.error = ServerState.RECONNECTING, reason
            self._session = None
            self._ready.clear()
        self._wake.set()

    # --- the supervising task ---
    async def _supervise(self) -> None:
        delay = 1.0
        while not self._stopping:
            self._lost, self._refresh = "", False
            self._wake.clear()
            try:
                await self._connect_and_watch()
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - anyio wraps failures in ExceptionGroups
                self.error = _describe(exc)
            finally:
                self._session = None
                self._ready.clear()
            if self._stopping:
                return
            connected_at = self.connected_at
            was_ready = connected_at is not None
            if connected_at is not None and time.monotonic() - connected_at > 30:
                delay = 1.0  # it ran a while: a fresh failure, not a loop
            self.state = ServerState.RECONNECTING if was_ready else ServerState.FAILED
            self._attempted.set()
            log.warning("mcp %s: %s; retrying in %.0f s", self.name, self.error or "disconnected", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)

    async def _connect_and_watch(self) -> None:
        from mcp import ClientSession

        async with contextlib.AsyncExitStack() as stack:
            streams = await stack.enter_async_context(self._transport(stack))
            session = await stack.enter_async_context(
                ClientSession(streams[0], streams[1], message_handler=self._on_message)
            )
            with anyio.fail_after(self.config.connect_timeout):
                await session.initialize()
                await self._list_tools(session)
            self._session = session
            self.state, self.error = ServerState.READY, ""
            self.connected_at = time.monotonic()
            self.connects += 1
            self._ready.set()
            self._attempted.set()
            log.info("mcp %s: connected (%d tool(s))", self.name, len(self.tools))
            await self._watch(session)

    def _stderr_to_log(self, stack: contextlib.AsyncExitStack) -> TextIO:
        """Where a stdio server's stderr goes: our log, a line at a time, never the bot's own
        stderr (in ``bot chat`` that is the screen, and a chatty server's lines would land in
        the answers). The pipe's write end is the child's; ours closes with the connection,
        and the reader thread ends at the pipe's end."""
        read_fd, write_fd = os.pipe()
        errlog = os.fdopen(write_fd, "w", encoding="utf-8", errors="replace")
        stack.callback(errlog.close)  # registered first: closed after the process is gone
        name = self.name

        def relay() -> None:
            with os.fdopen(read_fd, "rb") as pipe:
                for raw in pipe:
                    line = raw.decode("utf-8", "replace").rstrip()
                    if line:
                        log.info("mcp %s stderr: %s", name, line[:MAX_STDERR_LINE])

        threading.Thread(target=relay, name=f"mcp-{name}-stderr", daemon=True).start()
        return errlog

    def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        config = self.config
        if config.command:
            from mcp.client.stdio import StdioServerParameters, stdio_client

            # Only the variables the entry lists (plus the SDK's own PATH, HOME, USER, SHELL,
            # TERM, LOGNAME): the bot's keys and tokens never reach a server's process.
            params = StdioServerParameters(
                command=config.command, args=config.args, cwd=config.cwd, env=config.resolved_env(self.environ)
            )
            return stdio_client(params, errlog=self._stderr_to_log(stack))
        import httpx
        from mcp.client.streamable_http import streamable_http_client

        client = httpx.AsyncClient(
            headers=config.resolved_headers(self.environ),
            follow_redirects=False,
            timeout=httpx.Timeout(config.connect_timeout, read=300.0),
            trust_env=False,
        )
        stack.push_async_callback(client.aclose)
        return streamable_http_client(config.url or "", http_client=client)

    async def _watch(self, session: ClientSession) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.ping_interval)
            self._wake.clear()
            if self._lost:
                raise ConnectionLost(self._lost)
            with anyio.fail_after(self.config.connect_timeout):
                if self._refresh:
                    self._refresh = False
                    await self._list_tools(session)
                    log.info("mcp %s: tool list changed (%d tool(s))", self.name, len(self.tools))
                else:
                    await session.send_ping()

    async def _on_message(self, message: Any) -> None:
        from mcp import types

        if isinstance(message, Exception):
            self.lost(f"transport error: {_describe(message)}")
        elif isinstance(message, types.ServerNotification) and isinstance(
            message.root, types.ToolListChangedNotification
        ):
            self._refresh = True
            self._wake.set()

    async def _list_tools(self, session: ClientSession) -> None:
        from mcp import types

        listed: list[types.Tool] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            result = await session.list_tools(params=params)
            listed.extend(result.tools)
            cursor = result.nextCursor
            if not cursor:
                break
        tools: dict[str, RemoteTool] = {}
        hidden: list[str] = []
        for tool in listed:
            if not self.config.offers(tool.name):
                hidden.append(tool.name)
                continue
            remote = _remote(self.name, tool)
            if remote.model_name in tools:
                log.warning("mcp %s: two tools map to %s; keeping the first", self.name, remote.model_name)
                continue
            tools[remote.model_name] = remote
        self.tools, self.hidden_tools = tools, hidden
        if self.on_tools is not None:
            self.on_tools(self)

    # --- calls ---
    async def call(self, tool: RemoteTool, arguments: dict[str, Any], timeout: float) -> tuple[str, bool]:
        """The tool's result as text, and whether the server marked it an error. Raises
        ``CallFailed`` when there is no result (not connected, timeout, crash, refusal)."""
        from mcp.shared.exceptions import McpError
        from mcp.types import CONNECTION_CLOSED

        session = self._session
        if session is None or self.state is not ServerState.READY:
            why = self.error or "still connecting"
            raise CallFailed(
                f"the {self.name} server is not available right now ({why}); it is being reconnected, try again later",
                "unavailable",
            )
        try:
            with anyio.fail_after(timeout):
                result = await session.call_tool(tool.name, arguments, read_timeout_seconds=timedelta(seconds=timeout))
        except TimeoutError:
            raise CallFailed(f"{tool.label} did not answer within {timeout:g} seconds", "timeout") from None
        except McpError as exc:
            if exc.error.code == CONNECTION_CLOSED:
                self.lost("the connection closed during a call")
                raise CallFailed(
                    f"the {self.name} server stopped while running {tool.name}; it is being restarted", "crashed"
                ) from None
            if exc.error.code == 408:
                raise CallFailed(f"{tool.label} did not answer within {timeout:g} seconds", "timeout") from None
            raise CallFailed(f"the {self.name} server refused the call: {exc.error.message[:300]}", "error") from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:
            self.lost(f"the connection broke during a call ({type(exc).__name__})")
            raise CallFailed(
                f"the {self.name} server stopped while running {tool.name}; it is being restarted", "crashed"
            ) from None
        except RuntimeError as exc:  # the SDK's own checks (e.g. structured content not matching its schema)
            raise CallFailed(f"the {self.name} server gave an invalid result: {str(exc)[:300]}", "error") from None
        return _result_text(result), bool(result.isError)


def _remote(server: str, tool: Any) -> RemoteTool:
    annotations = tool.annotations
    read_only = bool(annotations and annotations.readOnlyHint)
    # MCP: destructiveHint defaults to true, and means nothing for a read-only tool.
    destructive = not read_only and (annotations is None or annotations.destructiveHint is not False)
    description, _ = strip_hidden(tool.description or "")
    title, _ = strip_hidden(tool.title or (annotations.title if annotations else None) or "")
    schema = dict(tool.inputSchema or {})
    if schema.get("type") != "object":
        schema = {"type": "object", "properties": {}}
    schema.pop("$schema", None)
    return RemoteTool(
        server,
        tool.name,
        model_name(server, tool.name),
        title.strip()[:60],
        description.strip()[:MAX_DESCRIPTION],
        schema,
        read_only,
        destructive,
    )


def _result_text(result: Any) -> str:
    parts: list[str] = []
    for block in result.content:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} ({block.mimeType}) not shown]")
        elif kind == "resource":
            resource = block.resource
            text = getattr(resource, "text", None)
            parts.append(text if text is not None else f"[binary resource {resource.uri}]")
        elif kind == "resource_link":
            parts.append(f"[link: {block.name} {block.uri}]")
    if not parts and result.structuredContent is not None:
        parts.append(json.dumps(result.structuredContent, ensure_ascii=False))
    return "\n".join(parts)


def _describe(exc: BaseException) -> str:
    """One line for the log and the admin page (the innermost cause of an ExceptionGroup)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__
