"""``bot run``: every configured platform and the ASGI app, in one process and one loop."""
from __future__ import annotations

import asyncio
import importlib
import logging
import signal

import uvicorn

from bot.adapter import KNOWN_ADAPTERS, PlatformAdapter
from bot.admin.app import create_admin_app
from bot.admin.health import RunnerHealth
from bot.app import create_app
from bot.config import Settings
from bot.runtime import build_runtime

log = logging.getLogger(__name__)


def _load_adapters(settings: Settings, service) -> list[PlatformAdapter]:  # noqa: ANN001
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
    adapters = _load_adapters(settings, runtime.service)
    if not adapters:
        log.warning("no platform credentials set (TELEGRAM_BOT_TOKEN, SLACK_BOT_TOKEN): "
                    "serving only /healthz; try `bot chat` for a terminal conversation")
    routes = [route for adapter in adapters for route in adapter.routes()]
    health = RunnerHealth(runtime.db, [a.name for a in adapters])
    admin = (create_admin_app(settings, runtime.db, health, access=runtime.service.ops.access)
             if settings.admin_page else None)
    app = create_app(routes, health={"platforms": [a.name for a in adapters]}, admin=admin)
    # X-Forwarded-* only from a proxy the operator says is there (BOT_ADMIN_TRUST_PROXY).
    server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port,
                                           log_level="warning", lifespan="off",
                                           proxy_headers=settings.admin_trust_proxy))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
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
            health.mark(adapter.name, True)
        log.info("listening on %s:%d", settings.host, settings.port)
        await asyncio.wait([serve, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for adapter in reversed(adapters):
            health.mark(adapter.name, False)
            try:
                await adapter.stop()
            except Exception:  # noqa: BLE001
                log.exception("stopping %s failed", adapter.name)
        server.should_exit = True
        await serve
        await runtime.close()
