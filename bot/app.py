"""The ASGI app on PORT: health check plus the adapters' webhook routes."""
from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route


def create_app(routes: list[BaseRoute] | None = None, *, health: dict | None = None) -> Starlette:
    status = health if health is not None else {}

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", **status})

    # The caller's routes come first: a richer /healthz (bot.health) replaces this default.
    return Starlette(routes=[*(routes or []), Route("/healthz", healthz)])
