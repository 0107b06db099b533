"""The ASGI app on PORT: health check, the adapters' webhook routes and the admin page."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp


def create_app(
    routes: list[BaseRoute] | None = None, *, health: dict | None = None, admin: ASGIApp | None = None
) -> Starlette:
    """``admin``: the operator's page (``bot.admin.app.create_admin_app``), served under /admin."""
    status = health if health is not None else {}

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", **status})

    extra: list[BaseRoute] = []
    if admin is not None:

        async def to_admin(_request: Request) -> RedirectResponse:
            return RedirectResponse("/admin/", status_code=307)

        extra = [Route("/admin", to_admin), Mount("/admin", app=admin)]
    # The caller's routes come first: a richer /healthz (bot.process.health) replaces this default.
    return Starlette(routes=[*(routes or []), *extra, Route("/healthz", healthz)])
