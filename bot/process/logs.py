"""Logging that cannot leak secrets: every record is scrubbed of configured secret values
and of anything shaped like a bearer token or a bot token in a URL."""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
from pathlib import Path

from bot.process import logformat

_PATTERNS = [
    re.compile(r"(Bearer\s+)[A-Za-z0-9._\-]+", re.IGNORECASE),
    re.compile(r"(/bot)\d+:[A-Za-z0-9_\-]+"),  # Telegram URLs carry the token
    re.compile(r"\b(xox[abposr]-)[A-Za-z0-9\-]+"),  # Slack tokens
    re.compile(r"\b(xapp-)[A-Za-z0-9\-]+"),
]


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        # Every configured secret, whatever its length: a value the operator set as secret is
        # never worth leaking. Short ones cannot occur by accident (config refuses a webhook
        # secret under 16 characters; the platforms' tokens are long).
        self.secrets = sorted((s for s in set(secrets) if s), key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        for pattern in _PATTERNS:
            text = pattern.sub(r"\1[redacted]", text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        redacted = self.redact(message)
        record.msg, record.args = redacted, None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


def setup_logging(
    level: str, secrets: list[str], log_format: str = "text", quiet: tuple[str, ...] = (), file: Path | None = None
) -> None:
    """``quiet``: more loggers (platform SDKs) to keep at WARNING unless debugging;
    ``file``: log there (rotated, the user's alone) instead of to stderr (an interactive
    terminal keeps its log apart from the conversation)."""
    handler: logging.Handler
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handler = logging.handlers.RotatingFileHandler(file, maxBytes=1_000_000, backupCount=2, encoding="utf-8")
        file.chmod(0o600)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logformat.formatter(log_format))  # LOG_FORMAT: text or json (bot.process.logformat)
    handler.addFilter(logformat.ContextFilter())
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO; Telegram's URLs carry the bot token.
    for noisy in ("httpx", "httpcore", "aiosqlite", *quiet):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
