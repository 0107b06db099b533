"""What a rate-limited call raises (the budgets, the surfaces and the core all speak of it)."""

from __future__ import annotations


class RateLimited(Exception):
    """The platform answered 429. The adapter has already paused its shared budget."""

    def __init__(self, retry_after: float, detail: str = "") -> None:
        super().__init__(f"rate limited for {retry_after:.1f}s {detail}".strip())
        self.retry_after = retry_after
