"""Many conversations at once through the real core: figures for one load level."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
import tracemalloc
from dataclasses import dataclass, field, replace

from bench.answers import AnswerShape
from bench.gateway import GatewayProcess
from bench.probe import CURRENT, BenchSurface, Probe, StreamCounter, now
from bot.platform.messages import Author, ConversationKey, IncomingMessage
from bot.process.runtime import Runtime

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class RssSampler:
    """The highest resident set size seen, sampled every few milliseconds by a thread
    (so a busy event loop does not delay the samples)."""

    def __init__(self, period: float = 0.01) -> None:
        self.period = period
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


@dataclass
class LoadResult:
    conversations: int
    turns: int
    probes: list[Probe]
    tokens: int  # completion chunks streamed to the bot
    cpu: float  # CPU seconds of the bot process (all its threads)
    gateway_cpu: float  # CPU seconds of the fake gateway's process (not the bot's)
    wall: float
    statements: int
    peak_streams: int
    rss_base: int = 0
    rss_peak: int = 0
    traced_peak: int | None = None  # tracemalloc: peak minus what was traced before
    errors: list[str] = field(default_factory=list)

    @property
    def latencies(self) -> list[float]:
        return [p.added_latency for p in self.probes if p.added_latency is not None]

    @property
    def exact(self) -> int:
        return sum(p.exact for p in self.probes)

    @property
    def tokens_per_cpu_second(self) -> float:
        return self.tokens / self.cpu if self.cpu else 0.0


class Driver:
    def __init__(self, runtime: Runtime, gateway: GatewayProcess, counter: StreamCounter) -> None:
        self.rt = runtime
        self.gateway = gateway
        self.counter = counter
        self._msg = 0

    async def run(
        self,
        keys: list[ConversationKey],
        turns: int,
        shape: AnswerShape,
        *,
        ramp: float = 0.0,
        sample_rss: bool = False,
        trace: bool = False,
    ) -> LoadResult:
        """Each conversation sends ``turns`` messages, the next once the previous is answered;
        conversations start spread evenly over ``ramp`` seconds."""
        probes: list[Probe] = []
        service = self.rt.service

        async def converse(index: int, key: ConversationKey) -> None:
            if ramp:
                await asyncio.sleep(ramp * index / len(keys))
            for turn in range(turns):
                self._msg += 1
                ask = replace(shape, tag=f"{key.chat}.{turn}")
                probe = Probe(expected=ask.text)
                probes.append(probe)
                CURRENT.set(probe)
                msg = IncomingMessage(
                    key=key, author=Author("u1", "Bench User"), text=ask.message(), message_id=f"m{self._msg}"
                )
                await service.handle(msg, BenchSurface(probe))

        self.counter.reset()
        gc.collect()
        rss_base = rss_bytes()
        if trace:
            tracemalloc.start()
        traced_base = tracemalloc.get_traced_memory()[0] if trace else 0
        sampler = RssSampler() if sample_rss else None
        if sampler:
            sampler.__enter__()
        statements0 = self.rt.db.statements
        gw0 = self.gateway.cpu_seconds()
        cpu0 = time.process_time()
        t0 = now()
        try:
            results = await asyncio.gather(*(converse(i, k) for i, k in enumerate(keys)), return_exceptions=True)
        finally:
            wall = now() - t0
            cpu = time.process_time() - cpu0
            gateway_cpu = self.gateway.cpu_seconds() - gw0
            statements = self.rt.db.statements - statements0
            if sampler:
                sampler.__exit__()
            traced_peak = None
            if trace:
                traced_peak = tracemalloc.get_traced_memory()[1] - traced_base
                tracemalloc.stop()
        errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
        tokens = sum(shape.chunks for p in probes if p.final_at is not None)
        return LoadResult(
            conversations=len(keys),
            turns=len(probes),
            probes=probes,
            tokens=tokens,
            cpu=cpu,
            gateway_cpu=gateway_cpu,
            wall=wall,
            statements=statements,
            peak_streams=self.counter.peak,
            rss_base=rss_base,
            rss_peak=sampler.peak if sampler else 0,
            traced_peak=traced_peak,
            errors=errors,
        )


def keys(prefix: str, count: int) -> list[ConversationKey]:
    return [ConversationKey("bench", "local", f"{prefix}{i}") for i in range(count)]
