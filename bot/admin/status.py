"""What the health page shows. The runner passes a provider that knows the live adapters;
without one, ``DbHealth`` reports what the database knows."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from bot.platform.base import Health
from bot.platform.discovery import plugins
from bot.store.db import Database
from bot.store.usage import UsageStore


@dataclass(frozen=True, slots=True)
class PlatformStatus:
    name: str
    state: str  # "connected", "disconnected", "stopped", "not configured", "seen in the database"
    detail: str = ""
    last_message: datetime | None = None


@dataclass(slots=True)
class HealthReport:
    platforms: list[PlatformStatus] = field(default_factory=list)
    pending_messages: int = 0  # user messages waiting for an answer
    answers_in_progress: int = 0
    recent_errors: list[dict] = field(default_factory=list)


class HealthProvider(Protocol):
    async def report(self) -> HealthReport: ...


class DbHealth:
    """Platforms from stored conversations, queue depth from pending messages, gateway errors
    from the call ledger."""

    def __init__(self, db: Database) -> None:
        self.store = UsageStore(db)

    async def report(self) -> HealthReport:
        activity = await self.store.platform_activity()
        queue = await self.store.queue_depth()
        return HealthReport(
            platforms=[
                PlatformStatus(
                    a["platform"], "seen in the database", f"{a['conversations']} conversation(s)", a["last_message"]
                )
                for a in activity
            ],
            pending_messages=queue["pending"],
            answers_in_progress=queue["streaming"],
            recent_errors=await self.store.recent_errors(20),
        )


class RunnerHealth(DbHealth):
    """``bot run``'s view: which adapters it started and how each is connected now (the
    same live answer ``/readyz`` reads: a dropped socket, a stopped poller); every other
    installed platform as "not configured"."""

    def __init__(
        self, db: Database, health: Mapping[str, Callable[[], Health]], *, known: list[str] | None = None
    ) -> None:
        super().__init__(db)
        self.health = dict(health)  # adapter name -> its health now
        self.configured = list(health)
        self.running: dict[str, bool] = {name: False for name in health}
        self.installed = known if known is not None else [p.name for p in plugins().values() if p.served_by_run]

    def mark(self, name: str, running: bool) -> None:
        self.running[name] = running

    def _state(self, name: str) -> tuple[str, str]:
        if not self.running.get(name):
            return "stopped", ""
        now = self.health[name]()
        return ("connected" if now.connected else "disconnected"), now.detail

    async def report(self) -> HealthReport:
        report = await super().report()
        seen = {p.name: p for p in report.platforms}
        live = []
        for name in self.configured:
            state, detail = self._state(name)
            stored = seen[name].detail if name in seen else ""
            live.append(
                PlatformStatus(
                    name,
                    state,
                    " · ".join(filter(None, (detail, stored))),
                    seen[name].last_message if name in seen else None,
                )
            )
        others = [p for p in report.platforms if p.name not in self.running]
        for name in self.installed:
            if name not in self.running and name not in seen:
                others.append(PlatformStatus(name, "not configured"))
        report.platforms = live + others
        return report
