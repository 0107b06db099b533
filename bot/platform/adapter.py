"""What a platform adapter offers the runner (``bot run``).

The runner finds adapters by dotted name, so the core never imports a platform SDK.
An adapter factory returns ``None`` when its credentials are not configured.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from bot.config import Settings
    from bot.core.service import ChatService


class PlatformAdapter(Protocol):
    name: str

    def routes(self) -> list[BaseRoute]:
        """Webhook routes to mount on the project's ASGI app (may be empty)."""

    async def start(self) -> None:
        """Connect (long polling, Socket Mode, setWebhook…) without blocking."""

    async def stop(self) -> None:
        """Disconnect and let in-flight answers finish their last write."""


AdapterFactory = Callable[["Settings", "ChatService"], "PlatformAdapter | None"]

# name -> "module:factory"; each module exposes ``create(settings, service)``.
KNOWN_ADAPTERS: dict[str, str] = {
    "telegram": "adapters.telegram:create",
    "slack": "adapters.slack:create",
}
