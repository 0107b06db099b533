"""``bot run``: every configured platform and the web app, in one process and one loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Iterator

import uvicorn

from bot.admin.app import create_admin_app
from bot.admin.status import RunnerHealth
from bot.config import Settings
from bot.platform.base import Platform
from bot.platform.discovery import Configured, plugins
from bot.process import health, metrics
from bot.process.runtime import Runtime, build_runtime
from bot.process.webapp import create_app

log = logging.getLogger(__name__)


class Host:
    """The running bot: its runtime, its platforms and its web app. ``bot run`` starts one
    and, on SIGTERM, ``shutdown()``s it; tests drive the same two steps."""

    def __init__(self, settings: Settings, platforms: list[Configured], *, migrate: bool = True) -> None:
        self.settings = settings
        self.migrate = migrate
        self.configured = platforms
        self.runtime: Runtime | None = None
        self.adapters: list[Platform] = []
        self.readiness: health.Readiness | None = None
        self.status: RunnerHealth | None = None
        self.app: health.DrainGate | None = None

    async def start(self) -> None:
        await self.prepare()
        await self.connect()

    async def prepare(self) -> None:
        """Build the runtime, the adapters and the web app (nothing connected yet)."""
        settings = self.settings
        runtime = self.runtime = await build_runtime(settings, migrate=self.migrate)
        for chosen in self.configured:
            self.adapters.append(runtime.adapter(chosen.plugin.load(), chosen.settings))
            log.info("platform enabled: %s", chosen.plugin.name)
        if not self.adapters:
            log.warning("%s", no_platform_message(settings))
        service = runtime.service
        names = [a.name for a in self.adapters]
        self.readiness = health.Readiness(runtime.db.engine, health.alembic_heads(settings.database_url), self.adapters)
        metrics.watch(queue_depth=lambda: service.queue_depth, active_streams=lambda: service.active_streams)
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
        routes = [
            *health.routes(self.readiness, metrics_token=token, alive=lambda: {"platforms": names}),
            *(route for adapter in self.adapters for route in adapter.routes()),
        ]
        # What the admin page shows: live, as /readyz reads it.
        self.status = RunnerHealth(runtime.db, {a.name: a.health for a in self.adapters})
        admin = (
            create_admin_app(settings, runtime.db, self.status, access=service.ops.access, mcp=runtime.mcp)
            if settings.admin_page
            else None
        )
        self.app = health.DrainGate(create_app(routes, health={"platforms": names}, admin=admin), self.readiness)

    async def connect(self) -> None:
        """Connect every platform (the web app already answers: webhooks get 503 until then)."""
        assert self.status is not None
        for adapter in self.adapters:
            await adapter.start()
            self.status.mark(adapter.name, True)

    async def shutdown(self) -> None:
        """SIGTERM: unready first (webhooks get 503 and go to another process), stop taking
        events, give running answers the grace (``BOT_SHUTDOWN_GRACE``) to finish, end the
        rest interrupted, then disconnect."""
        assert self.runtime is not None and self.readiness is not None
        service = self.runtime.service
        grace = self.settings.shutdown_grace
        log.info("shutting down: finishing %d running answer(s) within %.0fs", service.active_streams, grace)
        loop_time = asyncio.get_running_loop().time
        begun = loop_time()
        self.readiness.draining = True
        await health.pause_all(self.adapters, timeout=min(grace, 5.0) or 1.0)
        await service.shutdown(max(0.0, grace - (loop_time() - begun)))
        log.info("shutdown: every answer is written")
        await self.close()

    async def close(self) -> None:
        for adapter in reversed(self.adapters):
            if self.status is not None:
                self.status.mark(adapter.name, False)
            try:
                await adapter.stop()
            except Exception:
                log.exception("stopping %s failed", adapter.name)
        self.adapters = []
        if self.runtime is not None:
            await self.runtime.close()
            self.runtime = None


def no_platform_message(settings: Settings) -> str:
    """What `bot run` says when no platform is configured: what it serves anyway, and how
    to configure one (each installed platform's settings prefix, from its plug-in)."""
    served = ["/healthz", "/readyz", "/metrics", *(["/admin"] if settings.admin_page else [])]
    choices = ", ".join(
        f"{p.title} ({p.settings.model_config.get('env_prefix', '')}*)" for p in plugins().values() if p.served_by_run
    )
    return (
        f"no platform is configured, so no chat is answered; serving {', '.join(served[:-1])} and "
        f"{served[-1]} on {settings.host}:{settings.port}. Set one platform's settings ({choices}) and "
        "start again; `bot chat` talks to the bot in this terminal."
    )


async def run(settings: Settings, platforms: list[Configured]) -> None:
    host = Host(settings, platforms)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)
    server: _Server | None = None
    serve: asyncio.Task | None = None
    try:
        await host.prepare()
        assert host.app is not None
        # X-Forwarded-* only from a proxy the operator says is there (BOT_ADMIN_TRUST_PROXY);
        # uvicorn's own lines go through our handler (JSON, redacted). No route is a websocket:
        # ws="none" keeps uvicorn from loading a websockets library (memory).
        server = _Server(
            uvicorn.Config(
                host.app,
                host=settings.host,
                port=settings.port,
                log_level="warning",
                lifespan="off",
                log_config=None,
                ws="none",
                proxy_headers=settings.admin_trust_proxy,
            )
        )
        serve = asyncio.create_task(server.serve())
        await host.connect()
        _freeze_startup_objects()
        log.info("listening on %s:%d", settings.host, settings.port)
        await asyncio.wait([serve, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            await host.shutdown()
    finally:
        await host.close()
        if server is not None and serve is not None:
            server.should_exit = True
            await serve


def _freeze_startup_objects() -> None:
    """Move everything alive after start (modules, classes, SQLAlchemy/pydantic/PTB metadata:
    hundreds of thousands of objects) out of the collector's sight: otherwise every full
    collection walks them all again, measured at up to a third of the event loop's busy time."""
    gc.collect()
    gc.freeze()


class _Server(uvicorn.Server):
    """uvicorn without its own SIGTERM handling: `bot run` decides when the server stops
    (after the drain), so readiness and the webhook gate keep answering meanwhile."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
