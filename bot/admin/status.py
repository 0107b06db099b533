"""What the health page shows. The runner passes a provider that knows the live adapters;
without one, ``DbHealth`` reports what the database knows."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

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
            platforms=[PlatformStatus(a["platform"], "seen in the database",
                                      f"{a['conversations']} conversation(s)", a["last_message"])
                       for a in activity],
            pending_messages=queue["pending"], answers_in_progress=queue["streaming"],
            recent_errors=await self.store.recent_errors(20))


class RunnerHealth(DbHealth):
    """``bot run``'s view: which adapters it started and whether each is connected now (the
    same live answer ``/readyz`` reads: a dropped Socket Mode session, a stopped poller)."""

    def __init__(self, db: Database, connected: Mapping[str, Callable[[], bool]]) -> None:
        super().__init__(db)
        self.connected = dict(connected)  # adapter name -> is it connected now
        self.configured = list(connected)
        self.running: dict[str, bool] = {name: False for name in connected}

    def mark(self, name: str, running: bool) -> None:
        self.running[name] = running

    def _state(self, name: str) -> str:
        if not self.running.get(name):
            return "stopped"
        return "connected" if self.connected[name]() else "disconnected"

    async def report(self) -> HealthReport:
        report = await super().report()
        seen = {p.name: p for p in report.platforms}
        live = [PlatformStatus(name, self._state(name),
                               seen[name].detail if name in seen else "",
                               seen[name].last_message if name in seen else None)
                for name in self.configured]
        others = [p for p in report.platforms if p.name not in self.running]
        for name in ("telegram", "slack"):
            if name not in self.running and name not in seen:
                others.append(PlatformStatus(name, "not configured"))
        report.platforms = live + others
        return report
