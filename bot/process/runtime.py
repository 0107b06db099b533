"""Building the running parts from settings: database, store, gateway client, service,
and each platform's adapter with its inbox."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from bot.brands.brand_extension import brands_extension
from bot.characters.character_extension import characters_extension
from bot.compliance.rules import rules_for
from bot.config import Settings
from bot.copywriting.copy_extension import copywriting_extension
from bot.core.intake import PlatformInbox
from bot.core.service import ChatService
from bot.gateway.client import GatewayClient
from bot.longdocs.reading_feature import long_documents
from bot.platform.base import Platform, PlatformSettings
from bot.store.brands import BrandStore
from bot.store.coordinator import coordinator_for
from bot.store.db import Database
from bot.store.migrate import upgrade_async
from bot.store.repo import Store


@dataclass
class Runtime:
    settings: Settings
    db: Database
    store: Store
    gateway: GatewayClient
    service: ChatService
    mcp: Any = None  # bot.mcp.hub.McpHub when BOT_MCP_CONFIG names servers

    def adapter(self, platform: type[Platform], settings: PlatformSettings) -> Platform:
        """``platform``'s adapter, with an inbox of its own into this runtime's core."""
        return platform(settings, PlatformInbox(self.service, platform.name, settings.admits))

    async def close(self) -> None:
        await self.service.close()
        if self.mcp is not None:
            await self.mcp.stop()
        await self.gateway.aclose()
        await self.db.dispose()


MCP_START_WAIT = 10.0


def load_tools(settings: Settings):  # noqa: ANN201
    if not settings.tools:
        return None
    from bot.tools import build_registry

    return build_registry(settings)


async def build_runtime(settings: Settings, *, migrate: bool = True) -> Runtime:
    if migrate:
        await upgrade_async(settings.database_url)
    db = Database(settings.database_url, liveness_interval=settings.liveness_interval)
    store = Store(db)
    gateway = GatewayClient(settings)
    tools = load_tools(settings)
    service = ChatService(settings, store, gateway, tools=tools, coordinator=coordinator_for(settings.database_url))
    brands = BrandStore(db)
    service.extend(copywriting_extension(brands))  # copy checked against the chat's brand profile
    service.extend(characters_extension(store))
    service.extend(brands_extension(brands))
    # The compliance rules load once per process (about 0.3 s): here, off the event loop, unless
    # the settings already loaded them (an operator's BOT_COMPLIANCE_RULES_DIR is checked there).
    await asyncio.to_thread(rules_for, settings.compliance_rules_dir)
    mcp = None
    if tools is not None and settings.mcp_config:
        from bot.mcp.hub import McpHub

        mcp = McpHub.from_settings(settings, db)
        tools.add_source(mcp)
        service.extend(mcp.extension())
        # Servers connect in the background; a first attempt gets a few seconds so the first
        # messages after a start already see their tools.
        await mcp.start(wait=MCP_START_WAIT)
    service.extend(long_documents(store))
    await service.start()
    return Runtime(settings, db, store, gateway, service, mcp)
