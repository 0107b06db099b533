"""``bot run``: every configured platform and the ASGI app, in one process and one loop."""
from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import signal
from collections.abc import Iterator

import uvicorn

from bot.admin.app import create_admin_app
from bot.admin.status import RunnerHealth
from bot.config import Settings
from bot.core.service import ChatService
from bot.platform.adapter import KNOWN_ADAPTERS, PlatformAdapter
from bot.process import health, metrics
from bot.process.runtime import build_runtime
from bot.process.webapp import create_app

log = logging.getLogger(__name__)


def _load_adapters(settings: Settings, service: ChatService) -> list[PlatformAdapter]:
    adapters = []
    for name, target in KNOWN_ADAPTERS.items():
        module_name, _, factory_name = target.partition(":")
        factory = getattr(importlib.import_module(module_name), factory_name)
        adapter = factory(settings, service)
        if adapter is not None:
            adapters.append(adapter)
            log.info("platform enabled: %s", name)
    return adapters


async def run(settings: Settings) -> None:
    runtime = await build_runtime(settings)
    service = runtime.service
    adapters = _load_adapters(settings, service)
    if not adapters:
        log.warning("no platform credentials set (TELEGRAM_BOT_TOKEN, SLACK_BOT_TOKEN): "
                    "serving only /healthz; try `bot chat` for a terminal conversation")
    names = [a.name for a in adapters]
    readiness = health.Readiness(runtime.db.engine, health.alembic_heads(settings.database_url), adapters)
    metrics.watch(queue_depth=lambda: service.queue_depth, active_streams=lambda: service.active_streams)
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    routes = [*health.routes(readiness, metrics_token=token, alive=lambda: {"platforms": names}),
              *(route for adapter in adapters for route in adapter.routes())]
    # What the admin page shows: live, as /readyz reads it.
    platforms = RunnerHealth(runtime.db, {a.name: health.live_connection(a) for a in adapters})
    admin = (create_admin_app(settings, runtime.db, platforms, access=runtime.service.ops.access)
             if settings.admin_page else None)
    app = health.DrainGate(create_app(routes, health={"platforms": names}, admin=admin), readiness)
    # X-Forwarded-* only from a proxy the operator says is there (BOT_ADMIN_TRUST_PROXY); uvicorn's
    # own lines go through our handler (JSON, redacted).
    # No route is a websocket: ws="none" keeps uvicorn from loading a websockets library (memory).
    server = _Server(uvicorn.Config(app, host=settings.host, port=settings.port,
                                    log_level="warning", lifespan="off", log_config=None, ws="none",
                                    proxy_headers=settings.admin_trust_proxy))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except NotImplementedError:  # pragma: no cover - not on Windows
            pass
    serve = asyncio.create_task(server.serve())
    try:
        for adapter in adapters:
            await adapter.start()
            platforms.mark(adapter.name, True)
        _freeze_startup_objects()
        log.info("listening on %s:%d", settings.host, settings.port)
        await asyncio.wait([serve, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            await _drain(settings, readiness, adapters, service)
    finally:
        for adapter in reversed(adapters):
            platforms.mark(adapter.name, False)
            try:
                await adapter.stop()
            except Exception:
                log.exception("stopping %s failed", adapter.name)
        server.should_exit = True
        await serve
        await runtime.close()


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


async def _drain(settings: Settings, readiness: health.Readiness, adapters: list[PlatformAdapter],
                 service: ChatService) -> None:
    """SIGTERM: unready first (webhooks get 503 and go to another process), stop polling
    and Socket Mode, give running answers the grace to finish, end the rest interrupted."""
    grace = settings.shutdown_grace
    log.info("shutting down: finishing %d running answer(s) within %.0fs", service.active_streams, grace)
    loop_time = asyncio.get_running_loop().time
    begun = loop_time()
    readiness.draining = True
    await health.pause_all(adapters, timeout=min(grace, 5.0) or 1.0)
    await service.shutdown(max(0.0, grace - (loop_time() - begun)))
    log.info("shutdown: every answer is written")
