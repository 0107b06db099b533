"""Arguments as the call log keeps them: values that look like secrets replaced.

A value is dropped when its key names a secret (password, token, api_key, cookie…) or when it
looks like one by itself: well-known token shapes (``sk-…``, ``xoxb-…``, ``ghp_…``, AWS key
ids, JWTs, "Bearer …", PEM private keys) or a long unbroken run of mixed letters and digits
with little repetition (random keys). Ordinary text, ids, URLs and numbers are kept, so an
admin can see what was asked.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any

MAX_STORED = 2000
REDACTED = "[redacted]"
_SECRET_KEY = re.compile(
    r"pass(word|wd|phrase)?|secret|token|api[_-]?key|apikey|access[_-]?key|auth|cookie|credential|"
    r"session|private[_-]?key|signature|otp|pin$|cvv|card[_-]?number",
    re.IGNORECASE,
)
_SECRET_SHAPE = re.compile(
    r"^(sk|pk|rk)-[A-Za-z0-9_-]{12,}|^xox[abposr]-|^xapp-|^gh[pousr]_[A-Za-z0-9]{20,}|^github_pat_|"
    r"^AKIA[0-9A-Z]{16}$|^eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.|^(bearer|basic|token)\s+\S{8,}|"
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----|^AIza[0-9A-Za-z_-]{30,}",
    re.IGNORECASE,
)
_RANDOM_RUN = re.compile(r"[A-Za-z0-9+/=_-]{24,}")


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def looks_secret(value: str) -> bool:
    text = value.strip()
    if _SECRET_SHAPE.search(text):
        return True
    for run in _RANDOM_RUN.findall(text):
        classes = sum(bool(re.search(p, run)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
        if classes == 3 and _entropy(run) > 4.0:
            return True
    return False


def redact(value: Any, key: str = "") -> Any:
    if key and _SECRET_KEY.search(key) and value not in (None, "", [], {}):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str) and looks_secret(value):
        return REDACTED
    return value


def redacted_json(arguments: Any, limit: int = MAX_STORED) -> str:
    text = json.dumps(redact(arguments), ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
