"""Every gateway call priced and counted: a ledger row, the turn's cost, the quota counters.

The core wraps its gateway per turn: ``meter.for_turn(...)`` returns an object with the
gateway's ``stream`` and ``complete``, passing every event through unchanged and recording
the call when it ends (finished, failed or cancelled). So tool rounds, copy retries and fix
rounds, and refinements are each counted, with the usage the gateway reported for them.

Why one row per call rather than a sum per turn: a call is what the gateway bills and what
fails; per call we keep its own error kind, time to first token and duration (the admin
page's errors by kind and added latency), and the turn's total is still kept on
``turns.cost``, updated in the same transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from bot.config import Settings
from bot.gateway.client import Completion, collect
from bot.gateway.errors import GatewayError
from bot.gateway.events import ChatRequest, StreamEvent, Usage
from bot.store.db import Database
from bot.store.usage import CallKind, CallOutcome, CallRow, UsageStore
from bot.usage.periods import local_now
from bot.usage.pricing import Prices
from bot.usage.quotas import Quotas

log = logging.getLogger(__name__)


class StreamingGateway(Protocol):
    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]: ...


@dataclass(frozen=True, slots=True)
class MeterContext:
    """Whose call this is. ``user_id`` is the platform id of the person the turn answers."""

    turn_id: int | None
    conversation_id: int | None
    platform: str
    user_id: str
    kind: CallKind = "chat"


class Meter:
    def __init__(self, settings: Settings, db: Database, quotas: Quotas | None = None) -> None:
        self.settings = settings
        self.store = UsageStore(db)
        self.prices = Prices.from_settings(settings)
        self.quotas = quotas if quotas is not None else Quotas(settings, db)

    def for_turn(
        self,
        gateway: StreamingGateway,
        turn_id: int | None,
        conversation_id: int | None,
        platform: str,
        user_id: str,
        kind: CallKind = "chat",
    ) -> MeteredGateway:
        return MeteredGateway(gateway, self, MeterContext(turn_id, conversation_id, platform, user_id, kind))

    async def author_of(self, conversation_id: int, seq: int) -> str:
        """The user a turn is charged to: the author of the newest message it answers."""
        return await self.store.author_of(conversation_id, seq)

    async def record(
        self,
        ctx: MeterContext,
        usage: Usage | None,
        *,
        ttft_ms: int | None,
        duration_ms: int,
        outcome: CallOutcome = "ok",
        error_kind: str | None = None,
        error: str | None = None,
    ) -> float:
        """Store one call and charge its tokens and cost to the quota counters. Returns the cost.

        A cancelled stream (Stop) has no usage from the gateway: it is stored with zero
        tokens and outcome "cancelled"."""
        u = usage or Usage()
        cost = self.prices.cost(u.prompt_tokens, u.cached_tokens, u.completion_tokens)
        row = CallRow(
            turn_id=ctx.turn_id,
            conversation_id=ctx.conversation_id,
            platform=ctx.platform,
            user_id=ctx.user_id,
            kind=ctx.kind,
            model=self.settings.model,
            day=local_now(self.settings.timezone).strftime("%Y-%m-%d"),
            prompt_tokens=u.prompt_tokens,
            cached_tokens=u.cached_tokens,
            completion_tokens=u.completion_tokens,
            cost=cost,
            ttft_ms=ttft_ms,
            duration_ms=duration_ms,
            outcome=outcome,
            error_kind=error_kind,
            error=(error or "")[:2000] or None,
        )
        await self.store.record_call(row, self.quotas.counter_keys(ctx.conversation_id, ctx.platform, ctx.user_id))
        return cost


class MeteredGateway:
    """A gateway for one turn that records each call it makes."""

    def __init__(self, inner: StreamingGateway, meter: Meter, ctx: MeterContext) -> None:
        self.inner = inner
        self.meter = meter
        self.ctx = ctx
        self.cost = 0.0  # what this turn's calls cost so far

    def __getattr__(self, name: str) -> Any:  # capabilities, settings… of the real client
        return getattr(self.inner, name)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        started = time.monotonic()
        first: float | None = None
        usage: Usage | None = None
        outcome: CallOutcome
        outcome, kind, error = "ok", None, None
        try:
            async for event in self.inner.stream(request):
                if first is None:
                    first = time.monotonic()
                if isinstance(event, Usage):
                    usage = event
                yield event
        except GatewayError as exc:
            outcome, kind, error = "error", exc.kind, exc.log_message
            raise
        except (asyncio.CancelledError, GeneratorExit):
            outcome = "cancelled"
            raise
        except Exception as exc:
            outcome, kind, error = "error", "internal", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            ttft = int((first - started) * 1000) if first is not None else None
            duration = int((time.monotonic() - started) * 1000)
            # Shielded: a Stop that cancels the turn must not also cancel the bookkeeping.
            await asyncio.shield(self._record(usage, ttft, duration, outcome, kind, error))

    async def _record(
        self,
        usage: Usage | None,
        ttft: int | None,
        duration: int,
        outcome: CallOutcome,
        kind: str | None,
        error: str | None,
    ) -> None:
        try:
            self.cost += await self.meter.record(
                self.ctx, usage, ttft_ms=ttft, duration_ms=duration, outcome=outcome, error_kind=kind, error=error
            )
        except Exception:
            log.warning("turn %s: recording a gateway call failed", self.ctx.turn_id, exc_info=True)

    async def complete(self, request: ChatRequest) -> Completion:
        """The whole answer of one call (as ``GatewayClient.complete``), metered."""
        return await collect(self.stream(request))
