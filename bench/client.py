"""The gateway client alone: ``python -m bench.client [--streams N] [--tokens N] [--rate R]``.

Streams many answers at once through ``GatewayClient.stream`` (HTTP, SSE decoding, chunk
parsing; no core, no store) from the fake gateway in its own process, and prints the
streamed tokens per CPU-second of this process, for the fast transport and for stock
httpx. The core benchmark (``bench.run``) measures whole turns; this one isolates the part
the gateway package owns.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, replace

from bench.answers import AnswerShape
from bench.gateway import API_KEY, GatewayProcess


@dataclass(frozen=True, slots=True)
class ClientResult:
    transport: str
    tokens: int
    cpu: float
    wall: float

    @property
    def tokens_per_cpu_second(self) -> float:
        return self.tokens / self.cpu if self.cpu else 0.0


async def measure(base_url: str, shape: AnswerShape, streams: int, rounds: int, fast: bool) -> ClientResult:
    from bot.config import Settings
    from bot.gateway.client import GatewayClient
    from bot.gateway.events import ChatRequest, TextDelta

    settings = Settings(BYTESPIKE_API_KEY=API_KEY, BYTESPIKE_BASE_URL=base_url, _env_file=None)  # type: ignore[call-arg]
    async with GatewayClient(settings, fast_transport=fast) as client:

        async def one(tag: str) -> str:
            ask = replace(shape, tag=tag)
            request = ChatRequest(messages=[{"role": "user", "content": ask.message()}])
            parts = [e.text async for e in client.stream(request) if type(e) is TextDelta]
            text = "".join(parts)
            if text != ask.text:
                raise RuntimeError(f"answer {tag} arrived wrong ({len(text)} of {len(ask.text)} chars)")
            return text

        await asyncio.gather(*(one(f"warm{i}") for i in range(min(streams, 8))))  # connections, imports
        cpu0, t0 = time.process_time(), time.perf_counter()
        for r in range(rounds):
            await asyncio.gather(*(one(f"r{r}s{i}") for i in range(streams)))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    return ClientResult("fast" if fast else "stock httpx", shape.chunks * streams * rounds, cpu, wall)


async def _main(args: argparse.Namespace) -> None:
    shape = AnswerShape(tokens=args.tokens, think_tokens=args.think, rate=args.rate, ttft=0.0)
    gateway = GatewayProcess().start()
    try:
        print(
            f"{args.streams} streams × {args.rounds} rounds, {shape.chunks} chunks each "
            f"({args.tokens} text + {args.think} reasoning), {args.rate or 'unpaced'} chunks/s"
        )
        for fast in (True, False):
            res = await measure(gateway.base_url, shape, args.streams, args.rounds, fast)
            print(
                f"  {res.transport:12} {res.tokens_per_cpu_second:>10,.0f} tokens / CPU s "
                f"({res.tokens:,} tokens, {res.cpu:.2f} s CPU, {res.wall:.2f} s wall)"
            )
    finally:
        gateway.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.client", description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=400)
    parser.add_argument("--think", type=int, default=100)
    parser.add_argument("--rate", type=float, default=200.0, help="chunks per second per stream (0: unpaced)")
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
