"""Prometheus metrics of one ``bot run`` process, served at ``/metrics`` (``bot.process.health``).

Labels are bounded vocabularies only (a turn's state, a platform and its API method, a
gateway error kind, a token direction): never message text, user, chat or conversation
ids, which would both leak and explode the number of series. The core and the platform
call path report here through the small functions below; this module imports nothing
of the core's, so anything may call it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    exposition,
    generate_latest,
)

# One registry per process, with the process and platform collectors Prometheus users
# expect (CPU, memory, open files, GC), and nothing any library registered on the global one.
REGISTRY = CollectorRegistry(auto_describe=True)

ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

disable_created_metrics()  # the *_created series double the output for nothing we use
CONTENT_TYPE = exposition.CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 60.0, 120.0)
_ADDED_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)

TURNS = Counter("bot_turns", "Answers finished, by how they ended (the turn's state).", ["outcome"], registry=REGISTRY)
TTFT = Histogram(
    "bot_time_to_first_token_seconds",
    "From the start of a turn to the model's first visible answer text.",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
ADDED_LATENCY = Histogram(
    "bot_added_latency_seconds",
    "From the model's first visible token to the first platform write that shows "
    "answer text: the delay the bot itself adds.",
    buckets=_ADDED_BUCKETS,
    registry=REGISTRY,
)
PLATFORM_CALLS = Counter(
    "bot_platform_calls", "Platform API calls made, by platform and method.", ["platform", "method"], registry=REGISTRY
)
PLATFORM_429S = Counter(
    "bot_platform_rate_limited",
    "Platform API calls answered 429, by platform and method.",
    ["platform", "method"],
    registry=REGISTRY,
)
PLATFORM_DROPPED = Counter(
    "bot_platform_dropped",
    "Cosmetic platform calls (typing, status) not made for want of spare capacity, by platform and method.",
    ["platform", "method"],
    registry=REGISTRY,
)
PLATFORM_BURST = Gauge(
    "bot_platform_burst",
    "The burst a platform budget last learned (calls that may go at "
    "once; set when a 429 shrinks it or pressure grows it), by platform and budget "
    "(an API method, or a scope such as bot, chat, group).",
    ["platform", "method"],
    registry=REGISTRY,
)
GATEWAY_ERRORS = Counter(
    "bot_gateway_errors", "Gateway calls that failed a turn, by error kind.", ["kind"], registry=REGISTRY
)
TOKENS = Counter(
    "bot_tokens",
    "Model tokens: prompt (in), completion (out), prompt tokens served from the cache (cached).",
    ["direction"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "bot_queue_depth", "User messages this process has queued and not yet started answering.", registry=REGISTRY
)
ACTIVE_STREAMS = Gauge("bot_active_streams", "Answers this process is producing right now.", registry=REGISTRY)
ASYNCIO_TASKS = Gauge(
    "bot_asyncio_tasks",
    "Tasks alive on the service's event loop (a leak shows as growth while the load stays the same).",
    registry=REGISTRY,
)

# How a turn can end (the final ``TurnState`` values; a test keeps them equal). Metrics sit
# below the core and the rate limits, which report to them: they import neither.
OUTCOMES = ("complete", "stopped", "error", "interrupted")
DONE = "complete"
for _outcome in OUTCOMES:
    TURNS.labels(outcome=_outcome)  # every outcome shows, at 0, from the start
for _direction in ("in", "out", "cached"):
    TOKENS.labels(direction=_direction)

# A Telegram budget is named "telegram:<scope>:<chat id>"; a Slack call "slack <method>".
# Only the first two words are kept, and only when they look like identifiers.
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,63}\Z")


def call_labels(name: str, method: str | None = None) -> tuple[str, str]:
    """(platform, method) for a ``guarded`` call named ``name``, never carrying an id."""
    words = re.split(r"[\s:]+", name.strip())
    platform = words[0] if words and _WORD.match(words[0]) else "other"
    if method is None:
        method = words[1] if len(words) > 1 else ""
    return platform, method if _WORD.match(method or "") else "other"


def platform_call(name: str, method: str | None = None) -> None:
    platform, method = call_labels(name, method)
    PLATFORM_CALLS.labels(platform=platform, method=method).inc()


def platform_rate_limited(name: str, method: str | None = None) -> None:
    platform, method = call_labels(name, method)
    PLATFORM_429S.labels(platform=platform, method=method).inc()


def platform_dropped(name: str, method: str | None = None) -> None:
    platform, method = call_labels(name, method)
    PLATFORM_DROPPED.labels(platform=platform, method=method).inc()


def platform_burst(name: str, burst: int) -> None:
    platform, method = call_labels(name)
    PLATFORM_BURST.labels(platform=platform, method=method).set(burst)


# --- the gateway, for readiness as well as for the counter ---
CONNECTION_KINDS = frozenset({"network", "timeout"})


class GatewayHealth:
    """When the gateway last answered and when it last failed to connect (monotonic)."""

    def __init__(self) -> None:
        self.last_ok: float | None = None
        self.last_connection_error: float | None = None
        self.last_error_kind = ""

    def unreachable_for(self, window: float, now: float | None = None) -> str | None:
        """Why the gateway counts as unreachable (its last call failed to connect within
        ``window`` seconds, with no success since), or None."""
        now = time.monotonic() if now is None else now
        failed = self.last_connection_error
        if failed is None or now - failed > window or (self.last_ok is not None and self.last_ok > failed):
            return None
        return f"the last gateway call failed ({self.last_error_kind}) {now - failed:.0f}s ago"


GATEWAY = GatewayHealth()


def gateway_error(kind: str) -> None:
    GATEWAY_ERRORS.labels(kind=kind if _WORD.match(kind or "") else "other").inc()
    if kind in CONNECTION_KINDS:
        GATEWAY.last_connection_error, GATEWAY.last_error_kind = time.monotonic(), kind


def gateway_ok() -> None:
    GATEWAY.last_ok = time.monotonic()


# --- turns ---
def turn_finished(
    outcome: str, *, ttft: float | None, prompt_tokens: int, completion_tokens: int, cached_tokens: int
) -> None:
    TURNS.labels(outcome=outcome).inc()
    if ttft is not None:
        TTFT.observe(ttft)
    if ttft is not None or outcome == DONE:
        gateway_ok()  # the model answered: the gateway was reachable
    TOKENS.labels(direction="in").inc(prompt_tokens)
    TOKENS.labels(direction="out").inc(completion_tokens)
    TOKENS.labels(direction="cached").inc(cached_tokens)


def answer_shown(started: float, ttft: float | None) -> None:
    """The first platform write with answer text landed (``started`` is the turn's monotonic
    start, ``ttft`` the seconds from it to the model's first visible token)."""
    if ttft is not None:
        ADDED_LATENCY.observe(max(0.0, time.monotonic() - (started + ttft)))


def watch(*, queue_depth: Callable[[], float], active_streams: Callable[[], float]) -> None:
    """Read the gauges from the running service at scrape time (called on its event loop)."""
    QUEUE_DEPTH.set_function(queue_depth)
    ACTIVE_STREAMS.set_function(active_streams)
    loop = asyncio.get_running_loop()
    ASYNCIO_TASKS.set_function(lambda: len(asyncio.all_tasks(loop)))


def render() -> bytes:
    return generate_latest(REGISTRY)
