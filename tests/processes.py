"""Running `bot` as a real process in tests: a clean environment and a wait for /healthz."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import httpx

from tests.polling import eventually

ROOT = Path(__file__).resolve().parent.parent
OURS = ("BYTESPIKE_", "BOT_", "TELEGRAM_", "SLACK_", "FEISHU_", "DATABASE_URL", "REDIS_URL", "PORT", "HOST")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bot_env(**settings: str) -> dict[str, str]:
    """The machine's environment without any of our settings, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OURS)}
    return {**env, "PYTHONPATH": str(ROOT), **settings}


def run_env(
    gateway_url: str, database_url: str, port: int, *, api_key: str = "test-key", **settings: str
) -> dict[str, str]:
    """A ``bot run``'s environment: the gateway and its key, the database, the web app on
    127.0.0.1:``port``, plus ``settings``."""
    return bot_env(
        BYTESPIKE_API_KEY=api_key,
        BYTESPIKE_BASE_URL=gateway_url,
        DATABASE_URL=database_url,
        PORT=str(port),
        HOST="127.0.0.1",
        **settings,
    )


async def start_bot(*args: str, env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def wait_healthz(port: int, timeout: float = 30.0) -> dict:
    """``/healthz`` of a ``bot run`` starting on ``port``, once it listens (it must answer 200)."""
    async with httpx.AsyncClient() as client:

        async def healthz() -> dict | None:
            try:
                response = await client.get(f"http://127.0.0.1:{port}/healthz")
            except httpx.TransportError:
                return None  # not listening yet
            assert response.status_code == 200
            return response.json()

        return await eventually(healthz, timeout, every=0.1)


async def terminate(proc: asyncio.subprocess.Process, timeout: float = 20) -> str:
    """SIGTERM, wait, and return what the process wrote to stderr."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    except TimeoutError:
        proc.kill()
        _, err = await proc.communicate()
    return err.decode()
