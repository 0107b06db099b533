"""Configuration: one clear line per problem, never a traceback, secrets never shown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_bot(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BYTESPIKE_", "BOT_", "TELEGRAM_", "SLACK_", "DATABASE_URL"))
    }
    base["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], env={**base, **env}, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_missing_and_invalid_settings_are_one_line_each(tmp_path: Path) -> None:
    # `bot run` reads the core's settings and every platform's, and reports every problem at once.
    result = run_bot(
        "run",
        env={
            "BOT_MAX_TOKENS": "lots",
            "DATABASE_URL": "mysql://x/y",
            "TELEGRAM_WEBHOOK_SECRET": "bad secret!",
            "SLACK_MAX_BODY": "tiny",
        },
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line.strip() for line in result.stderr.splitlines()[1:]]
    assert any(line.startswith("BOT_MAX_TOKENS:") for line in lines)
    assert any(line.startswith("DATABASE_URL:") for line in lines)
    assert any(line.startswith("SLACK_MAX_BODY:") for line in lines)
    secret_line = next(line for line in lines if line.startswith("TELEGRAM_WEBHOOK_SECRET:"))
    assert "bad secret!" not in secret_line  # secrets are never echoed


def test_missing_api_key_is_reported(tmp_path: Path) -> None:
    result = run_bot("chat", env={}, cwd=tmp_path)
    assert result.returncode == 2
    assert "BYTESPIKE_API_KEY: missing" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_example_env_file_copied_as_is_asks_for_the_key(tmp_path: Path) -> None:
    """A new user's first step: `cp .env.example .env`, then `bot chat` before filling it in."""
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    result = run_bot("chat", env={}, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-500:]
    assert "BYTESPIKE_API_KEY: missing" in result.stderr
    assert "Traceback" not in result.stderr and "ConnectError" not in result.stderr  # nothing was called


def test_env_file_is_read_and_max_tokens_clamped(tmp_path: Path, monkeypatch) -> None:
    from bot.config import load_settings

    (tmp_path / ".env").write_text("BYTESPIKE_API_KEY=from-file\nBOT_MAX_TOKENS=99999\n")
    monkeypatch.chdir(tmp_path)
    for name in ("BYTESPIKE_API_KEY", "BOT_MAX_TOKENS"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.api_key.get_secret_value() == "from-file"
    assert settings.max_tokens == 16384
    assert "from-file" not in repr(settings)


def test_logs_never_contain_secrets() -> None:
    import logging

    from bot.process.logs import RedactingFilter

    record = logging.LogRecord(
        "x",
        logging.INFO,
        __file__,
        1,
        "calling https://api.telegram.org/bot123456:ABCdef_ghi/getMe with %s",
        ("Bearer sk-live-1234567890",),
        None,
    )
    RedactingFilter(["sk-live-1234567890"]).filter(record)
    text = record.getMessage()
    assert "ABCdef_ghi" not in text and "sk-live-1234567890" not in text
