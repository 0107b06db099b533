"""A fake server in a process of its own.

A fake that shares the test's event loop timestamps a request when that loop gets to it: a
garbage collection or a busy gateway stream in the test process lets requests that the bots
sent well apart look bunched, and a fake that enforces rate limits then answers 429s no
real platform would. Tests that judge pacing across several ``bot run`` processes serve
the fake from its own process and ask it over a pipe.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from tests.fakes.telegram_api import Call, FakeLimits, FakeTelegram, StoredMessage

Request = tuple[str, str, tuple, dict]  # ("call" | "get", name, args, kwargs)


def _serve(conn: Connection, factory: Callable[..., Any], kwargs: dict) -> None:
    # Bot processes stopped mid-request hang up on the server; the tests judge the calls the
    # fake recorded, and its log would only reach the terminal, uncaptured.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    asyncio.run(_serve_async(conn, factory, kwargs))


async def _serve_async(conn: Connection, factory: Callable[..., Any], kwargs: dict) -> None:
    loop = asyncio.get_running_loop()
    readable = asyncio.Event()
    async with factory(**kwargs) as fake:
        conn.send("ready")
        loop.add_reader(conn.fileno(), readable.set)
        while True:
            await readable.wait()
            readable.clear()
            while conn.poll():
                request: Request | None = conn.recv()
                if request is None:
                    loop.remove_reader(conn.fileno())
                    return
                kind, name, args, kw = request
                try:
                    value = getattr(fake, name)
                    conn.send(("ok", value(*args, **kw) if kind == "call" else value))
                except Exception as exc:  # noqa: BLE001 - the test process raises it
                    conn.send(("error", f"{type(exc).__name__}: {exc}"))


class Apart:
    """Runs ``factory(**kwargs)`` (an async context manager serving HTTP) in a spawned
    process; ``call`` and ``get`` reach it. Arguments and results must pickle."""

    def __init__(self, factory: Callable[..., Any], **kwargs: Any) -> None:
        self._factory, self._kwargs = factory, kwargs
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None

    async def __aenter__(self) -> Apart:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        self._process = context.Process(target=_serve, args=(theirs, self._factory, self._kwargs), daemon=True)
        self._process.start()
        self._conn = ours
        if await asyncio.get_running_loop().run_in_executor(None, self._receive) != "ready":
            raise RuntimeError("the fake server did not start")
        return self

    def _receive(self, timeout: float = 30.0) -> Any:
        """The fake's next message; a fake that died or hangs fails the test, not stalls it."""
        assert self._conn is not None
        if not self._conn.poll(timeout):
            raise RuntimeError(f"the fake server did not answer within {timeout:g}s")
        return self._conn.recv()

    async def __aexit__(self, *exc: object) -> None:
        assert self._conn is not None and self._process is not None
        self._conn.send(None)
        await asyncio.get_running_loop().run_in_executor(None, self._process.join, 10.0)
        if self._process.is_alive():
            self._process.kill()
        self._conn.close()

    def _ask(self, kind: str, name: str, args: tuple = (), kwargs: dict | None = None) -> Any:
        assert self._conn is not None
        self._conn.send((kind, name, args, kwargs or {}))
        status, value = self._receive()
        if status != "ok":
            raise RuntimeError(f"fake server: {value}")
        return value

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._ask("call", name, args, kwargs)

    def get(self, name: str) -> Any:
        return self._ask("get", name)


class TelegramApart(Apart):
    """``FakeTelegram`` in its own process, with the part of its interface that tests of
    several processes use."""

    def __init__(self, *, limits: FakeLimits) -> None:
        super().__init__(FakeTelegram, limits=limits)
        self.token = self.api_url = self.username = ""

    async def __aenter__(self) -> TelegramApart:
        await super().__aenter__()
        self.token, self.api_url, self.username = self.get("token"), self.get("api_url"), self.get("username")
        return self

    def add_chat(self, chat_id: int, type_: str, **kwargs: Any) -> None:
        self.call("add_chat", chat_id, type_, **kwargs)

    def new_message(self, chat_id: int, user: dict, text: str, **kwargs: Any) -> dict:
        return self.call("new_message", chat_id, user, text, **kwargs)

    def send_user_message(self, chat_id: int, user: dict, text: str, **kwargs: Any) -> dict:
        return self.call("send_user_message", chat_id, user, text, **kwargs)

    def calls_to(self, method: str) -> list[Call]:
        return self.call("calls_to", method)

    def mention_entity(self, text: str) -> dict:
        return self.call("mention_entity", text)

    def bot_messages(self, chat_id: int) -> list[StoredMessage]:
        return self.call("bot_messages", chat_id)

    def earned_429s(self) -> list[Call]:
        return self.call("earned_429s")

    def limit_violations(self) -> list[str]:
        return self.call("limit_violations")
