"""What an orchestrator asks a ``bot run`` process: ``/healthz`` (alive), ``/readyz`` (fit to
take work), ``/metrics`` (Prometheus), and the gate that turns new work away while the
process shuts down.

Liveness is only that the process and its event loop answer: restarting a process because
its database or a platform is down would not help. Readiness is what a load balancer or a
Kubernetes readiness probe should route on: the database answers, its schema is at
Alembic's head, every configured platform is connected, the gateway did not just fail to
connect, and the process is not shutting down. Each failing check is named in the 503 body.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.platform.base import Platform
from bot.process import metrics
from bot.store.migrate import current_heads, heads

log = logging.getLogger(__name__)

HEALTH_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
CHECK_TIMEOUT = 3.0  # a probe that hangs is a failed probe, not a hung endpoint
GATEWAY_WINDOW = 60.0  # seconds a failed gateway connection keeps the process unready


def alembic_heads(database_url: str) -> set[str]:
    """The revisions the code's migrations end at."""
    return heads(database_url)


class Readiness:
    def __init__(
        self,
        engine: AsyncEngine,
        heads: set[str],
        platforms: Sequence[Platform],
        *,
        gateway_window: float = GATEWAY_WINDOW,
    ) -> None:
        self.engine = engine
        self.heads = heads
        self.platforms = list(platforms)
        self.gateway_window = gateway_window
        self.draining = False  # set first on SIGTERM: the balancer stops sending work here

    async def problems(self) -> dict[str, str]:
        """Every check that fails, by name, with the reason (empty: ready)."""
        found: dict[str, str] = {}
        if self.draining:
            found["shutdown"] = "shutting down"
        try:
            database = await asyncio.wait_for(self._database(), CHECK_TIMEOUT)
        except TimeoutError:
            database = f"no answer within {CHECK_TIMEOUT:.0f}s"
        except Exception as exc:  # noqa: BLE001 - any failure is the answer
            database = f"unreachable: {type(exc).__name__}"
        if database:
            found["database"] = database
        for platform in self.platforms:
            state = platform.health()
            if not state.connected:
                found[f"platform:{platform.name}"] = state.detail or "not connected"
        if reason := metrics.GATEWAY.unreachable_for(self.gateway_window):
            found["gateway"] = reason
        return found

    async def _database(self) -> str:
        async with self.engine.connect() as conn:
            current = await current_heads(conn)
        if current != self.heads:
            return (
                f"schema at {', '.join(sorted(current)) or 'nothing'}, code expects "
                f"{', '.join(sorted(self.heads))}: run `bot migrate`"
            )
        return ""


def bearer_ok(request: Request, token: str | None) -> bool:
    if not token:
        return True
    given = request.headers.get("authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


def routes(
    readiness: Readiness, *, metrics_token: str | None = None, alive: Callable[[], dict[str, object]] | None = None
) -> list[BaseRoute]:
    """``/healthz``, ``/readyz`` and ``/metrics`` for the ASGI app (placed before its defaults)."""

    async def healthz(_request: Request) -> JSONResponse:
        # Answering at all proves the event loop runs; the body is informative only.
        return JSONResponse({"status": "ok", **(alive() if alive else {})})

    async def readyz(_request: Request) -> JSONResponse:
        problems = await readiness.problems()
        if problems:
            return JSONResponse({"status": "not ready", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics_endpoint(request: Request) -> Response:
        if not bearer_ok(request, metrics_token):
            return Response("unauthorized\n", status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)

    return [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics_endpoint)]


class DrainGate:
    """ASGI middleware: while the process shuts down, every request but the health ones is
    answered 503 with Retry-After, so Telegram and Slack redeliver to another process."""

    def __init__(self, app: ASGIApp, readiness: Readiness) -> None:
        self.app = app
        self.readiness = readiness

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.readiness.draining and scope["path"] not in HEALTH_PATHS:
            response = JSONResponse(
                {"ok": False, "description": "shutting down"}, status_code=503, headers={"Retry-After": "1"}
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def pause_all(adapters: Sequence[Platform], timeout: float) -> None:
    """Stop every adapter taking new events (polling, Socket Mode); webhooks are gated."""
    pausing: list[Awaitable[None]] = [a.pause() for a in adapters]
    for result in await asyncio.gather(*(asyncio.wait_for(p, timeout) for p in pausing), return_exceptions=True):
        if isinstance(result, BaseException):
            log.warning("pausing a platform failed: %r", result)
