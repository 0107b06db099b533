"""One Bot API call within its budgets (``bot.ratelimits.budgets.guarded``), with Telegram's errors
turned into the core's.

A 429 pauses the budget of the chat it was about (not the whole bot) for exactly its
``retry_after`` and surfaces as ``RateLimited``; "message is not modified" means the
message already shows that text and is not an error.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Awaitable, Callable
from typing import TypeVar

from telegram.error import BadRequest, Forbidden, RetryAfter

from bot.platform import Budget, Priority, SurfaceGone, WriteFailed, guarded

T = TypeVar("T")

_NOT_MODIFIED = "message is not modified"
_GONE = (
    "message to edit not found",
    "message can't be edited",
    "message to be replied not found",
    "chat not found",
    "message thread not found",
)


def retry_seconds(exc: Exception) -> float | None:
    """Telegram's ``retry_after`` for a 429, else None."""
    if not isinstance(exc, RetryAfter):
        return None
    with warnings.catch_warnings():  # PTB warns that retry_after becomes a timedelta
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def is_not_modified(exc: BaseException) -> bool:
    return isinstance(exc, BadRequest) and _NOT_MODIFIED in exc.message.lower()


def is_entity_error(exc: BaseException) -> bool:
    return isinstance(exc, BadRequest) and "can't parse entities" in exc.message.lower()


async def call(
    scope: Budget,
    bot_wide: Budget,
    request: Callable[[], Awaitable[T]],
    method: str | None = None,
    priority: Priority = Priority.EDIT,
) -> T | None:
    """Run ``request`` once the budgets allow (a cosmetic one only with spare capacity,
    else ``Dropped``); None when Telegram says "not modified"."""
    try:
        return await guarded(
            (scope, bot_wide),
            request,
            retry_after=retry_seconds,
            name=scope.name,
            pause=(scope,),
            method=method,
            priority=priority,
        )
    except BadRequest as exc:
        if is_not_modified(exc):
            return None
        if any(reason in exc.message.lower() for reason in _GONE):
            raise WriteFailed(exc.message) from exc
        raise
    except Forbidden as exc:  # blocked by the user, removed from the group
        raise SurfaceGone(exc.message) from exc
