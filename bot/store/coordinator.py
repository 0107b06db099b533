"""One writer per conversation, across processes: PostgreSQL advisory locks.

Each process keeps one connection of its own for coordination. On it, it holds a
session-level advisory lock for every conversation it is answering, so exactly one process
answers a conversation at a time; if the process dies, PostgreSQL drops its connection and
with it every lock, and a survivor takes over. ``LISTEN/NOTIFY`` on the same connection
carries what one process must tell the others (Stop pressed on a turn another process
streams). A one-process deployment (SQLite, or ``bot chat``) uses ``LocalCoordinator``,
where every lock is granted.

The protocol (``ChatService._work``): store the message, then try the conversation's lock.
The holder answers every waiting message, releases the lock, then looks once more: a
message stored while it was letting go was stored by someone whose try failed, so the
holder sees it. Why not a job queue (procrastinate, pgqueuer): the queue here is already
the conversation's stored messages, and a lock per conversation held by a live
connection gives order, exclusivity and crash release with no extra tables or workers.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Callable

import asyncpg

log = logging.getLogger(__name__)

CHANNEL = "bot_control"
CONVERSATIONS = 0x2B07_0001  # advisory-lock namespaces (the two-int form: namespace, id)
SINGLETONS = 0x2B07_0002
HEALTH_INTERVAL = 2.0  # seconds between checks that the coordination connection lives


def _singleton_key(name: str) -> int:
    return zlib.crc32(name.encode()) - 2**31  # a signed int4


class LocalCoordinator:
    """One process: every lock is granted; a stop signal is delivered here."""

    distributed = False

    def __init__(self) -> None:
        self.on_stop: Callable[[int], object] = lambda _turn_id: None

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def take(self, conversation_id: int) -> bool:
        return True

    async def release(self, conversation_id: int) -> None:
        return None

    async def lead(self, name: str) -> bool:
        return True

    async def signal_stop(self, turn_id: int) -> None:
        self.on_stop(turn_id)


class PgCoordinator:
    distributed = True

    def __init__(self, dsn: str, *, health_interval: float = HEALTH_INTERVAL) -> None:
        self.dsn = dsn
        self.health_interval = health_interval
        self.on_stop: Callable[[int], object] = lambda _turn_id: None
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()  # one statement at a time on the connection
        self._held: set[int] = set()
        self._leading: set[str] = set()
        self._watch: asyncio.Task | None = None

    async def start(self) -> None:
        await self._connect()
        self._watch = asyncio.create_task(self._keep_alive(), name="coordinator-health")

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        if self._conn is not None:
            await self._conn.close()  # every lock this process held goes with it
            self._conn = None

    async def _connect(self) -> None:
        self._conn = await asyncpg.connect(self.dsn)
        await self._conn.add_listener(CHANNEL, self._on_notify)

    async def _fetch(self, query: str, *args: object) -> object:
        async with self._lock:
            assert self._conn is not None
            return await self._conn.fetchval(query, *args)

    async def take(self, conversation_id: int) -> bool:
        got = bool(await self._fetch("SELECT pg_try_advisory_lock($1, $2)", CONVERSATIONS, conversation_id))
        if got:
            self._held.add(conversation_id)
        return got

    async def release(self, conversation_id: int) -> None:
        self._held.discard(conversation_id)
        try:
            await self._fetch("SELECT pg_advisory_unlock($1, $2)", CONVERSATIONS, conversation_id)
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
            log.warning("coordinator: could not release conversation %s (the connection will)", conversation_id)

    async def lead(self, name: str) -> bool:
        """Become the one process that does ``name`` (e.g. Telegram polling) while it lives."""
        if name in self._leading:
            return True
        if await self._fetch("SELECT pg_try_advisory_lock($1, $2)", SINGLETONS, _singleton_key(name)):
            self._leading.add(name)
            return True
        return False

    async def signal_stop(self, turn_id: int) -> None:
        await self._fetch("SELECT pg_notify($1, $2)", CHANNEL, f"stop:{turn_id}")

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        kind, _, value = str(payload).partition(":")
        if kind == "stop" and value.isdigit():
            self.on_stop(int(value))

    async def _keep_alive(self) -> None:
        """A dropped connection loses every lock: reconnect at once and take them back."""
        while True:
            await asyncio.sleep(self.health_interval)
            try:
                await self._fetch("SELECT 1")
                continue
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
                log.warning("coordinator: connection lost (%s); reconnecting", exc)
            try:
                async with self._lock:
                    if self._conn is not None:
                        self._conn.terminate()
                    await self._connect()
                for conversation_id in list(self._held):
                    if not await self.take(conversation_id):
                        log.error("coordinator: conversation %s was taken over while disconnected", conversation_id)
                        self._held.discard(conversation_id)
                for name in list(self._leading):
                    self._leading.discard(name)
                    if not await self.lead(name):
                        log.error("coordinator: lost the lead of %s while disconnected", name)
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
                log.warning("coordinator: reconnect failed (%s); retrying", exc)


def coordinator_for(database_url: str) -> LocalCoordinator | PgCoordinator:
    if database_url.startswith("sqlite"):
        return LocalCoordinator()
    return PgCoordinator(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
