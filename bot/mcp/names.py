"""Tool names as the model sees them: ``<server>__<tool>``, valid function names.

OpenAI-style function names are 1-64 characters of ``A-Z a-z 0-9 _ -``. A server's tool
name may hold dots, spaces or CJK, or be long: such characters become ``_`` and an
over-long name keeps its start and gains a short hash of the original, so two tools never
share a name and the same tool keeps its name across restarts (the prompt cache depends
on the tool definitions' bytes)."""

from __future__ import annotations

import hashlib
import re

MAX_NAME = 64
SEPARATOR = "__"
_INVALID = re.compile(r"[^A-Za-z0-9_-]")


def model_name(server: str, tool: str) -> str:
    raw = f"{server}{SEPARATOR}{tool}"
    name = _INVALID.sub("_", raw)
    if name == raw and len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha1(raw.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9]}_{digest}"


def is_valid(name: str) -> bool:
    return 0 < len(name) <= MAX_NAME and not _INVALID.search(name)
