"""Days and months in the operator's time zone (BOT_TIMEZONE): quota periods and report days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Period(StrEnum):
    DAY = "day"
    MONTH = "month"

    @property
    def adjective(self) -> str:
        return "daily" if self is Period.DAY else "monthly"


def local_now(tz: str, now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(tz))


def period_start(period: Period, local: datetime) -> str:
    """The key of the period ``local`` falls in: "2026-12-01" or "2026-12"."""
    return local.strftime("%Y-%m-%d") if period is Period.DAY else local.strftime("%Y-%m")


def resets_at(period: Period, local: datetime) -> datetime:
    """When the period containing ``local`` ends (local midnight / the 1st of next month)."""
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.DAY:
        nxt = (midnight + timedelta(days=1, hours=2)).replace(hour=0)  # safe across DST changes
    else:
        nxt = (midnight.replace(day=28) + timedelta(days=4)).replace(day=1)
    return nxt.replace(tzinfo=local.tzinfo)


def describe_reset(period: Period, local: datetime) -> str:
    """ "at 00:00 UTC (in 3 h 5 min)" / "on 1 January at 00:00 Europe/Berlin (in 12 days)"."""
    when = resets_at(period, local)
    left = when - local
    zone = str(local.tzinfo)
    if left >= timedelta(days=2):
        wait = f"{left.days} days"
    else:
        hours, rest = divmod(int(left.total_seconds()), 3600)
        wait = f"{hours} h {rest // 60} min" if hours else f"{max(1, rest // 60)} min"
    if period is Period.DAY:
        return f"at 00:00 {zone} (in {wait})"
    return f"on {when.day} {when.strftime('%B')} at 00:00 {zone} (in {wait})"
