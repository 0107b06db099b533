"""Platforms in tests: an adapter built the way `bot run` builds it (its plug-in, its own
settings, an inbox into a runtime's core), from env-style values (``TELEGRAM_BOT_TOKEN=…``)."""

from __future__ import annotations

from typing import Any

from bot.platform.base import Platform, PlatformSettings
from bot.platform.discovery import plugins


def platform_settings(name: str, **values: Any) -> PlatformSettings:
    """``name``'s settings from the values under its prefix (others are ignored), never
    from the environment or a .env file."""
    model = plugins()[name].settings
    prefix = str(model.model_config.get("env_prefix", "")).upper()
    own = {
        key[len(prefix) :].lower(): value
        for key, value in values.items()
        if key.upper().startswith(prefix) and key[len(prefix) :].lower() in model.model_fields
    }
    return model.load(_env_file=None, **own)


def connect(runtime: Any, name: str, **values: Any) -> Platform:
    """``name``'s adapter on ``runtime`` (not started)."""
    return runtime.adapter(plugins()[name].load(), platform_settings(name, **values))


def inbox_for(runtime: Any, name: str, **values: Any) -> Any:
    """The inbox ``name``'s adapter would get on ``runtime`` (its allowlist from ``values``)."""
    from bot.core.intake import PlatformInbox

    return PlatformInbox(runtime.service, name, platform_settings(name, **values).admits)


async def deliver(inbox: Any, msg: Any, surface: Any, *, event_id: str = "") -> None:
    """Hand ``msg`` in as an adapter does, and wait until it is handled."""
    from bot.platform.inbox import Arrival

    async def build() -> Any:
        return msg

    await inbox.receive(Arrival(msg.key, event_id, msg.author, surface, msg.addressed), build)
