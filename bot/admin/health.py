"""What the health page shows. The runner passes a provider that knows the live adapters;
without one, ``DbHealth`` reports what the database knows."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from bot.store.db import Database
from bot.store.usage import UsageStore


@dataclass(frozen=True, slots=True)
class PlatformStatus:
    name: str
    state: str  # "connected", "stopped", "not configured", "seen in the database"
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
            platforms=[PlatformStatus(a["platform"], "seen in the database",
                                      f"{a['conversations']} conversation(s)", a["last_message"])
                       for a in activity],
            pending_messages=queue["pending"], answers_in_progress=queue["streaming"],
            recent_errors=await self.store.recent_errors(20))


class RunnerHealth(DbHealth):
    """``bot run``'s view: which adapters it started and whether they are running."""

    def __init__(self, db: Database, configured: list[str]) -> None:
        super().__init__(db)
        self.configured = configured
        self.running: dict[str, bool] = {name: False for name in configured}

    def mark(self, name: str, running: bool) -> None:
        self.running[name] = running

    async def report(self) -> HealthReport:
        report = await super().report()
        seen = {p.name: p for p in report.platforms}
        live = [PlatformStatus(name, "connected" if self.running.get(name) else "stopped",
                               seen[name].detail if name in seen else "",
                               seen[name].last_message if name in seen else None)
                for name in self.configured]
        others = [p for p in report.platforms if p.name not in self.running]
        for name in ("telegram", "slack"):
            if name not in self.running and name not in seen:
                others.append(PlatformStatus(name, "not configured"))
        report.platforms = live + others
        return report
