"""Building the running parts from settings: database, store, gateway client, service,
and each platform's adapter with its inbox."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.brands.extension import brands_extension
from bot.characters.extension import characters_extension
from bot.compliance.rules import rules_for
from bot.config import Settings
from bot.copywriting.extension import copywriting_extension
from bot.core.intake import PlatformInbox
from bot.core.service import ChatService
from bot.gateway.client import GatewayClient
from bot.longdocs.feature import long_documents
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

    def adapter(self, platform: type[Platform], settings: PlatformSettings) -> Platform:
        """``platform``'s adapter, with an inbox of its own into this runtime's core."""
        return platform(settings, PlatformInbox(self.service, platform.name, settings.admits))

    async def close(self) -> None:
        await self.service.close()
        await self.gateway.aclose()
        await self.db.dispose()


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
    service = ChatService(settings, store, gateway, tools=load_tools(settings),
                          coordinator=coordinator_for(settings.database_url))
    brands = BrandStore(db)
    service.extend(copywriting_extension(brands))  # copy checked against the chat's brand profile
    service.extend(characters_extension(store))
    service.extend(brands_extension(brands))
    # The compliance rules load once per process (about 0.3 s): here, off the event loop, unless
    # the settings already loaded them (an operator's BOT_COMPLIANCE_RULES_DIR is checked there).
    await asyncio.to_thread(rules_for, settings.compliance_rules_dir)
    service.extend(long_documents(store))
    await service.start()
    return Runtime(settings, db, store, gateway, service)
