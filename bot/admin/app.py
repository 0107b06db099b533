"""The admin page: an ASGI app mounted at ``/admin`` by ``bot.process.webapp.create_app``.

Every page but the login needs a session (otherwise: a redirect to the login); every form
posts a CSRF token. No JavaScript: forms, links and server-drawn SVG charts.

The page (``bot.admin.site``: Jinja2, pygal, argon2, limits — about 10 MB resident) is
imported on the first request to it, not at start: most processes never serve one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Receive, Scope, Send

from bot.config import Settings
from bot.store.db import Database

if TYPE_CHECKING:
    from bot.admin.status import HealthProvider
    from bot.usage.access import Access


class _AdminApp:
    def __init__(
        self, settings: Settings, db: Database, health: HealthProvider | None, access: Access | None, mcp: Any = None
    ) -> None:
        self._args: tuple[Any, ...] = (settings, db, health, access, mcp)
        self._app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            from bot.admin.site import create_admin_site  # site never imports this module

            self._app = create_admin_site(*self._args)
        await self._app(scope, receive, send)


def create_admin_app(
    settings: Settings,
    db: Database,
    health: HealthProvider | None = None,
    access: Access | None = None,
    mcp: Any = None,
) -> ASGIApp:
    """``access``: the core's own (``ChatService.ops.access``), so a block applies at once;
    ``mcp``: the running MCP hub (the Tools section shows its live servers)."""
    return _AdminApp(settings, db, health, access, mcp)
