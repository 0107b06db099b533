"""A platform is a plug-in: an installed package that names a ``PlatformPlugin`` in the
``chatbot.platforms`` entry-point group is found, configured from its own settings, started
by `bot run`, and answered through the same door — with no change to the bot."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import httpx

from bot.config import SettingsError
from bot.platform.discovery import configured, plugins
from tests.processes import free_port, run_env, start_bot, terminate, wait_healthz

# A whole third-party platform: messages come in on a webhook, answers are kept for a GET.
ECHO_PLATFORM = '''
"""A toy platform, packaged apart from the bot."""
from __future__ import annotations

from pydantic_settings import SettingsConfigDict
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.platform import (
    Arrival, Author, ConversationKey, IncomingMessage, MessageRef, Platform, PlatformPlugin,
    PlatformSettings, ReplySurface, SurfaceLimits, Write,
)


class EchoSettings(PlatformSettings):
    model_config = SettingsConfigDict(env_prefix="ECHO_", env_file=".env", extra="ignore", env_ignore_empty=True)
    enabled: bool = False
    max_chars: int = 500

    def configured(self) -> bool:
        return self.enabled

    def problems(self) -> list[str]:
        return [] if self.max_chars >= 50 else ["ECHO_MAX_CHARS: at least 50"]


class Board(ReplySurface):
    def __init__(self, max_chars: int) -> None:
        self.limits = SurfaceLimits(max_chars=max_chars)
        self.shown: dict[str, str] = {}

    async def post(self, text: str, write: Write) -> MessageRef:
        ref = MessageRef(str(len(self.shown) + 1))
        self.shown[ref.id] = text
        return ref

    async def edit(self, ref: MessageRef, text: str, write: Write) -> MessageRef:
        self.shown[ref.id] = text
        return ref

    async def set_status(self, status: str) -> None:
        return None


class EchoAdapter(Platform):
    name = "echo"

    def __init__(self, settings, inbox) -> None:
        super().__init__(settings, inbox)
        self.board = Board(settings.max_chars)

    def routes(self):
        return [Route("/echo", self._in, methods=["POST"]), Route("/echo", self._out, methods=["GET"])]

    async def _in(self, request: Request) -> JSONResponse:
        body = await request.json()
        key = ConversationKey("echo", "w", body["room"])
        author = Author(body["user"], body["user"])
        message = IncomingMessage(key=key, author=author, text=body["text"], message_id=body["id"])

        async def build() -> IncomingMessage:
            return message

        self.inbox.receive(Arrival(key, body["id"], author, self.board), build)
        return JSONResponse({"ok": True})

    async def _out(self, request: Request) -> JSONResponse:
        return JSONResponse(list(self.board.shown.values()))

    async def start(self) -> None:
        self.inbox.attach(self)

    async def stop(self) -> None:
        return None

    def surface_for(self, key, *, reply_to="", user=""):
        return self.board if key.platform == "echo" else None


PLUGIN = PlatformPlugin(name="echo", title="Echo", settings=EchoSettings, adapter="echo_platform:EchoAdapter")
'''


def install(tmp_path: Path) -> Path:
    """The package and its distribution metadata, as pip would leave them in site-packages."""
    site = tmp_path / "site"
    (site / "echo_platform").mkdir(parents=True)
    (site / "echo_platform" / "__init__.py").write_text(ECHO_PLATFORM)
    info = site / "echo_platform-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-platform\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent("""\
        [chatbot.platforms]
        echo = echo_platform:PLUGIN
        """)
    )
    return site


def test_an_installed_package_adds_a_platform(tmp_path: Path, monkeypatch) -> None:
    site = install(tmp_path)
    monkeypatch.syspath_prepend(str(site))
    found = plugins()
    assert {"telegram", "slack", "console", "echo"} <= set(found)
    assert found["echo"].title == "Echo"
    assert [c.plugin.name for c in configured(_env_file=None)[0]] == []  # installed, not configured
    chosen, problems = configured(_env_file=None, enabled=True)
    assert [c.plugin.name for c in chosen] == ["echo"] and problems == []
    _, problems = configured(_env_file=None, enabled=True, max_chars=10)
    assert problems == ["ECHO_MAX_CHARS: at least 50"]  # its own checks, one line each
    assert found["echo"].load().name == "echo"


def test_its_settings_problems_are_reported_like_the_core_s(tmp_path: Path, monkeypatch) -> None:
    site = install(tmp_path)
    monkeypatch.syspath_prepend(str(site))
    try:
        plugins()["echo"].settings.load(_env_file=None, max_chars="lots")
    except SettingsError as exc:
        assert exc.lines == [
            "ECHO_MAX_CHARS: Input should be a valid integer, unable to parse string as an integer (got 'lots')"
        ]
    else:
        raise AssertionError("a bad value was accepted")


async def test_bot_run_serves_a_third_party_platform(tmp_path: Path, fake_gateway, database_url: str) -> None:
    site = install(tmp_path)
    port = free_port()
    env = run_env(
        fake_gateway.base_url,
        database_url,
        port,
        ECHO_ENABLED="true",
    )
    env["PYTHONPATH"] = f"{site}:{env.get('PYTHONPATH', '')}"
    proc = await start_bot("run", env=env, cwd=tmp_path)
    try:
        health = await wait_healthz(port)
        assert health["platforms"] == ["echo"]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            sent = {"room": "r1", "user": "ada", "text": "hello from a plug-in", "id": "m1"}
            assert (await client.post("/echo", json=sent)).status_code == 200
            assert (await client.post("/echo", json=sent)).status_code == 200  # delivered twice

            async with asyncio.timeout(20):  # another process: its answers can only be asked for
                while not (shown := (await client.get("/echo")).json()) or not shown[-1].startswith("echo:"):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            assert shown == ["echo: hello from a plug-in"]
            ready = (await client.get("/readyz")).json()
            assert ready == {"status": "ready"}
    finally:
        err = await terminate(proc)
    assert proc.returncode == 0, err[-2000:]
    assert len(fake_gateway.requests) == 1  # the second delivery was dropped by the core's dedupe
