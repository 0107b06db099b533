"""Log lines as JSON (``LOG_FORMAT=json``), and the conversation and turn a line is about.

The core binds ``conversation_id`` and ``turn_id`` in context variables when a worker runs
a turn; every line logged in that task (and the tasks it starts) carries them, in either
format. Redaction (``bot.process.logs``) runs as a handler filter before any formatter.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging

conversation_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("conversation_id", default=None)
turn_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("turn_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s:%(ids)s %(message)s"


def bind_conversation(value: int) -> None:
    """The current task (a conversation's worker) works for conversation ``value``."""
    conversation_id.set(value)
    turn_id.set(None)


def bind_turn(value: int) -> None:
    turn_id.set(value)


class ContextFilter(logging.Filter):
    """Stamps each record with the ids bound in the logging task's context."""

    def filter(self, record: logging.LogRecord) -> bool:
        # A record's extra fields live in its __dict__ (LogRecord declares none of them).
        fields = record.__dict__
        fields.setdefault("conversation_id", conversation_id.get())
        fields.setdefault("turn_id", turn_id.get())
        ids = [
            f"{name}={value}"
            for name, value in (("conversation", fields["conversation_id"]), ("turn", fields["turn_id"]))
            if value is not None
        ]
        record.ids = f" [{' '.join(ids)}]" if ids else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the ids, and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ("conversation_id", "turn_id"):
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:  # already redacted when it came through bot.process.logs' filter
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter(log_format: str) -> logging.Formatter:
    """The formatter for ``LOG_FORMAT`` ("text" or "json")."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT, defaults={"ids": ""})
