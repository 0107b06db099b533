"""The least added latency the platforms' documented limits allow: computed, never measured.

A scenario starts many conversations at once; their answers' first visible tokens arrive
together (same time to first token, same reasoning length), and each conversation then
needs one write that shows answer text. When those first writes share a rate limit, the
k-th of them cannot land before the limit lets k calls through, however good the bot is.
That is the floor printed beside the measured added latency.

A limit "at most ``count`` calls in any ``seconds``" (a sliding window, which is what
Telegram and Slack document and what ``tests/fakes`` enforce) lets the k-th call (0-based)
of a burst go at ``(k // count) × seconds`` at the earliest: ``count`` at once, the next
``count`` one window later. For a per-second limit this is about k/30 s (Telegram's 30/s).

A platform may tolerate smaller bursts than a window's calls (Slack documents "20+ per minute
… occasional bursts", not how large). The fakes' second limit mode is a token bucket that
refills at the documented rate but holds only ``burst`` calls: its k-th call goes at
``max(0, k - burst + 1) × seconds / count``; ``slack_first_writes(..., start_stream=
SLACK_START_STREAM_BURSTY)`` is the floor against that Slack.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``count`` calls in any ``seconds``-long window."""

    count: int
    seconds: float

    def slot(self, k: int) -> float:
        """Seconds after a burst starts at which its k-th call (0-based) may land, at the earliest."""
        return (k // self.count) * self.seconds


@dataclass(frozen=True, slots=True)
class Bucket:
    """A token bucket: ``count`` calls every ``seconds`` at most, no more than ``burst`` at
    once (full at first)."""

    count: int
    seconds: float
    burst: int

    def slot(self, k: int) -> float:
        """Seconds after a burst starts at which its k-th call (0-based) may land, at the earliest."""
        return max(0, k - self.burst + 1) * self.seconds / self.count


class Slots(Protocol):
    def slot(self, k: int) -> float: ...


# Telegram Bot API (core.telegram.org/bots/faq, and Bot API 9.3 for drafts).
TG_BOT = Limit(30, 1.0)  # ~30 calls a second, bot-wide
TG_CHAT = Limit(1, 1.0)  # 1 message a second per chat
TG_GROUP = Limit(20, 60.0)  # 20 messages a minute per group
TG_DRAFTS = (Limit(20, 5.0), Limit(40, 30.0))  # sendMessageDraft per chat
# Slack Web API, per method per workspace per minute (api.slack.com/apis/rate-limits).
SLACK_START_STREAM = Limit(20, 60.0)  # chat.startStream / chat.stopStream: Tier 2
SLACK_UPDATE = Limit(50, 60.0)  # chat.update: Tier 3
SLACK_APPEND = Limit(100, 60.0)  # chat.appendStream: Tier 4
SLACK_POST = Limit(1, 1.0)  # chat.postMessage: ~1 a second per channel
# A Slack whose bursts are a sixth of a minute (tests/fakes/slack_api.py, LimitMode.BUCKETS).
SLACK_START_STREAM_BURSTY = Bucket(20, 60.0, 20 // 6)
# Feishu Open API (open.feishu.cn, each API's page): per API per app, and per chat for sends.
FEISHU_API = Limit(50, 1.0)  # also 1,000 a minute
FEISHU_CHAT = Limit(5, 1.0)  # send + reply per private chat and per group


def telegram_first_writes(conversations: int, bot: Limit = TG_BOT) -> list[float]:
    """Floors of ``conversations`` Telegram chats (private or groups, one conversation per
    chat) whose first answer-bearing writes — a draft, a sendMessage — are all due at once.

    Each chat needs one write, so the per-chat, per-group and draft limits (≥ 1 call each)
    never bind; only the bot-wide limit does: the k-th write lands at ``bot.slot(k)``."""
    return [bot.slot(k) for k in range(conversations)]


def feishu_first_writes(conversations: int, api: Limit = FEISHU_API) -> list[float]:
    """Floors of ``conversations`` Feishu chats whose answers' first text is due at once.

    Each chat needs one write that shows text — the update of the card opened while the model
    thought, or the reply carrying a new card — through one API's per-app limit (50 a
    second); the per-chat limit (5 a second) never binds for one write per chat."""
    return [api.slot(k) for k in range(conversations)]


def staggered_first_writes(due: Sequence[float], limit: Limit = TG_BOT) -> list[float]:
    """Floors of first writes due at the given times (seconds; conversations arriving over
    time) through one shared limit: calls go in order of when they are due, each as soon as
    it is due and the window lets it (no more than ``count`` in any ``seconds``). Returns
    landing time minus due time, in the order given."""
    order = sorted(range(len(due)), key=due.__getitem__)
    landed: list[float] = []
    out = [0.0] * len(due)
    for i in order:
        at = due[i]
        if len(landed) >= limit.count:
            at = max(at, landed[-limit.count] + limit.seconds)
        landed.append(at)
        out[i] = at - due[i]
    return out


def slack_first_writes(
    threads_per_channel: Sequence[int],
    *,
    streams: bool = True,
    posts: bool = True,
    start_stream: Slots = SLACK_START_STREAM,
    post: Limit = SLACK_POST,
    streams_used: int = 0,
) -> list[float]:
    """Floors of Slack threads in one workspace whose first answer-bearing writes are all due
    at once. ``threads_per_channel[c]`` threads sit in channel c.

    A thread's first write creates its reply: chat.startStream (``streams``; one limit for
    the whole workspace) or chat.postMessage (``posts``; one limit per channel). With both,
    each creation takes whichever is free first — the cheapest mix the limits allow: at
    every instant a slot opens, each channel's post slot goes to one of its own waiting
    threads, and the workspace's startStream slots to the channels with the most waiting.
    ``streams_used``: startStream calls already made in the current window (a warm-up
    answer's), which the burst cannot have; they free a window later (counted as a whole
    window: the floor errs on the high side by the seconds since they were made).
    ``start_stream`` may be a ``Bucket`` (a Slack with smaller bursts), ``streams_used`` then
    being tokens spent.
    Returns one floor per thread, in no particular order."""
    if not (streams or posts):
        raise ValueError("a thread needs a way to write: streams, posts or both")
    waiting = [n for n in threads_per_channel if n > 0]
    out: list[float] = []
    if not waiting:
        return out
    # Every instant at which a slot of either kind opens, up to when all could be served.
    total = sum(waiting)
    times: set[float] = set()
    if streams:
        times.update(start_stream.slot(k) for k in range(streams_used, streams_used + total))
    if posts:
        times.update(post.slot(k) for k in range(0, max(waiting), post.count))
    used_streams = streams_used
    used_posts = [0] * len(waiting)
    for t in sorted(times):
        if posts:
            for c, n in enumerate(waiting):
                while n and post.slot(used_posts[c]) <= t:
                    used_posts[c] += 1
                    n -= 1
                    out.append(t)
                waiting[c] = n
        if streams:
            while start_stream.slot(used_streams) <= t and any(waiting):
                c = max(range(len(waiting)), key=waiting.__getitem__)
                waiting[c] -= 1
                used_streams += 1
                out.append(t)
        if not any(waiting):
            break
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), nearest rank: the same rule the measured figures use."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def floor_p50_p99(floors: Sequence[float]) -> tuple[float, float]:
    return percentile(floors, 50), percentile(floors, 99)
