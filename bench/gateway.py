"""The fake gateway in its own process, so its CPU is not charged to the bot.

``python -m bench.gateway`` serves ``tests.fakes.gateway.FakeGateway`` on 127.0.0.1 and
answers each benchmark message with the shape written in it (``bench.answers``).
``GatewayProcess`` starts it from the benchmark and reads its CPU time from /proc.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.answers import AnswerShape

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bench-key"


def _answer(body: dict[str, Any]):
    from tests.fakes.gateway import Answer, echo_answer, last_user_text

    shape = AnswerShape.parse(last_user_text(body))
    if shape is None:
        return echo_answer(body)
    return Answer(
        text=shape.text,
        reasoning=shape.reasoning,
        reasoning_style="inline",
        chunk_size=shape.chunk_chars,
        first_token_delay=shape.ttft,
        chunk_delay=1.0 / shape.rate if shape.rate else 0.0,
        completion_tokens=shape.chunks,
    )


async def _serve() -> None:
    from tests.fakes.gateway import FakeGateway

    gw = FakeGateway(api_key=API_KEY, record=False)
    gw.default = _answer
    await gw.start()
    print(gw.base_url, flush=True)
    # Serve until the benchmark closes our stdin.
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await gw.stop()


class GatewayProcess:
    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    def start(self) -> GatewayProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.gateway"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"the fake gateway did not start (said {line!r})")
        self.base_url = line
        return self

    def cpu_seconds(self) -> float:
        """User + system CPU of the gateway process so far."""
        if self.proc is None:
            return 0.0
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


if __name__ == "__main__":
    try:
        asyncio.run(_serve())
    except KeyboardInterrupt:
        pass
