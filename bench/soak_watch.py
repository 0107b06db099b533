"""What the soak samples of a `bot run` process, and how it judges the samples.

Every few seconds: the resident set of the process and its children, its open file
descriptors (both from /proc), the PostgreSQL connections to its database
(pg_stat_activity: only the bot connects to that scratch database) and, from its
``/metrics``, the tasks alive on its event loop and the answers it is streaming.
The judgement is robust to a noisy machine: medians of whole windows, not single
samples, and a least-squares slope over everything after the warm-up.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

MB = 2**20


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # seconds since the soak's traffic began (negative: before it)
    rss: int  # bytes, the process and its children
    fds: int
    pg: int | None  # connections to the bot's database (None on SQLite)
    tasks: int | None  # asyncio tasks of the bot's loop (bot_asyncio_tasks)
    streams: int | None  # answers being produced (bot_active_streams)
    phase: str  # "idle-start", "load", "idle-end"


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (the bot may start helpers: document readers, MCP servers)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss(pid: int) -> int:
    return sum(rss_bytes(p) for p in (pid, *_children(pid)))


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def parse_gauges(text: str, names: tuple[str, ...]) -> dict[str, float]:
    """Unlabelled gauges from a Prometheus text exposition."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in names:
            out[name] = float(value)
    return out


class Sampler:
    """Samples one process every ``interval`` seconds until stopped."""

    def __init__(
        self,
        pid: int,
        port: int,
        *,
        interval: float,
        pg_count: Callable[[], Awaitable[int]] | None,
        live: Path | None = None,
    ) -> None:
        self.pid, self.port, self.interval, self.pg_count = pid, port, interval, pg_count
        self.live = live  # every sample appended here as a JSON line, as it is taken
        self.samples: list[Sample] = []
        self.phase = "idle-start"
        self.t0 = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._client = httpx.AsyncClient(timeout=10)

    async def sample(self) -> Sample:
        tasks = streams = None
        try:
            response = await self._client.get(f"http://127.0.0.1:{self.port}/metrics")
            gauges = parse_gauges(response.text, ("bot_asyncio_tasks", "bot_active_streams"))
            tasks = int(gauges["bot_asyncio_tasks"]) if "bot_asyncio_tasks" in gauges else None
            streams = int(gauges["bot_active_streams"]) if "bot_active_streams" in gauges else None
        except httpx.HTTPError:
            pass
        pg = await self.pg_count() if self.pg_count else None
        s = Sample(
            round(time.monotonic() - self.t0, 2), tree_rss(self.pid), open_fds(self.pid), pg, tasks, streams, self.phase
        )
        self.samples.append(s)
        if self.live is not None:
            with self.live.open("a") as f:
                f.write(json.dumps(asdict(s)) + "\n")
        return s

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            await self.sample()
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._client.aclose()


# --- the judgement -----------------------------------------------------------------------------


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value), per hour."""
    if len(points) < 3:
        return None
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx * 3600


@dataclass(frozen=True, slots=True)
class Windows:
    """Where the judgement looks, in seconds since the traffic began."""

    warmup: float  # ignored: imports finishing, pools filling, caches warming
    window: float  # the length of the early and the late window

    @classmethod
    def for_duration(cls, seconds: float) -> Windows:
        """Warm-up: the first 10 % (at most 5 minutes); windows of 5 minutes, or a third of
        what is left after the warm-up on shorter runs."""
        warmup = min(0.1 * seconds, 300.0)
        return cls(warmup, min(300.0, (seconds - warmup) / 3))


@dataclass(frozen=True, slots=True)
class Trend:
    early: float | None  # median of the window just after the warm-up
    late: float | None  # median of the last window of the load
    growth: float | None  # late - early
    slope_per_hour: float | None  # over everything after the warm-up
    peak: float | None
    early_peak: float | None  # the most in the window just after the warm-up (pools filled by then)
    idle_start: float | None  # median before the traffic (after one answer per platform)
    idle_end: float | None  # median once the traffic ended and every answer finished


def trend(samples: list[Sample], value: Callable[[Sample], float | None], windows: Windows, duration: float) -> Trend:
    load = [(s.at, v) for s in samples if s.phase == "load" and (v := value(s)) is not None]
    after = [(t, v) for t, v in load if t >= windows.warmup]
    early = [v for t, v in after if t < windows.warmup + windows.window]
    late = [v for t, v in after if t >= duration - windows.window]

    def med(xs: list[float]) -> float | None:
        return statistics.median(xs) if xs else None

    e, la = med(early), med(late)
    idle = {p: [v for s in samples if s.phase == p and (v := value(s)) is not None] for p in ("idle-start", "idle-end")}
    return Trend(
        e,
        la,
        None if e is None or la is None else la - e,
        slope_per_hour(after),
        max((v for _, v in load), default=None),
        max(early, default=None),
        med(idle["idle-start"]),
        med(idle["idle-end"]),
    )


def trends(samples: list[Sample], duration: float) -> dict[str, Trend]:
    windows = Windows.for_duration(duration)
    return {
        "rss_mb": trend(samples, lambda s: s.rss / MB, windows, duration),
        "fds": trend(samples, lambda s: s.fds, windows, duration),
        "pg_connections": trend(samples, lambda s: s.pg, windows, duration),
        "asyncio_tasks": trend(samples, lambda s: s.tasks, windows, duration),
        "active_streams": trend(samples, lambda s: s.streams, windows, duration),
    }


def samples_json(samples: list[Sample]) -> list[dict]:
    return [asdict(s) for s in samples]
