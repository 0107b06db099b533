"""How a turn ended, worked out in one place: its state, what the user is told, and what
the operator's log gets."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from enum import Enum

from bot.core import texts
from bot.core.turns import TurnState
from bot.gateway.errors import GatewayError, StreamInterrupted
from bot.process import metrics

log = logging.getLogger(__name__)


class StopReason(Enum):
    USER = "user"  # Stop was pressed
    GONE = "gone"  # the chat stopped taking the bot's messages (removed, blocked)
    SHUTDOWN = "shutdown"  # the process is stopping and its grace ran out
    MERGED = "merged"  # the question grew (a burst: files joined it) before any answer showed


GONE_ERROR = "the chat no longer takes the bot's messages (removed from it, or blocked)"
SHUTDOWN_ERROR = "the process shut down"  # stored with a turn its process ended at shutdown


@dataclass(frozen=True, slots=True)
class Outcome:
    state: TurnState
    marker: str = ""  # appended to the answer, or the whole reply when notice_only
    notice_only: bool = False  # nothing worth keeping was written: the reply is a notice
    error: str | None = None  # for the operator, stored with the turn


def finished(finish_reason: str | None) -> Outcome:
    marker = {"length": texts.LENGTH_CUT, "content_filter": texts.CONTENT_FILTER}.get(finish_reason or "", "")
    return Outcome(TurnState.DONE, marker)


def failed(exc: BaseException, turn_id: int, *, has_text: bool, stopped: StopReason | None) -> Outcome:
    """The outcome of a turn whose production raised ``exc`` (re-raised if it is not ours)."""
    if isinstance(exc, asyncio.CancelledError):
        if stopped is StopReason.SHUTDOWN:  # the process ended it after its shutdown grace
            return Outcome(TurnState.INTERRUPTED, texts.SHUTDOWN_MARKER, error=SHUTDOWN_ERROR)
        if stopped is None:
            raise exc
        if stopped is StopReason.GONE:
            return Outcome(TurnState.INTERRUPTED, texts.STOPPED, error=GONE_ERROR)
        return Outcome(TurnState.STOPPED, texts.STOPPED)
    if isinstance(exc, GatewayError):
        metrics.gateway_error(exc.kind)
        log.warning("turn %s: %s", turn_id, exc.log_message)
        reason = texts.INTERRUPTED.format(reason=exc.user_message.rstrip("."))
        if isinstance(exc, StreamInterrupted):
            return Outcome(TurnState.INTERRUPTED, reason, error=exc.log_message)
        if has_text:
            return Outcome(TurnState.FAILED, reason, error=exc.log_message)
        return Outcome(TurnState.FAILED, exc.user_message, notice_only=True, error=exc.log_message)
    log.error("turn %s failed", turn_id, exc_info=exc)
    error = f"{type(exc).__name__}: {exc}"
    if has_text:
        return Outcome(TurnState.FAILED, texts.INTERRUPTED.format(reason="an internal error"), error=error)
    return Outcome(TurnState.FAILED, texts.INTERNAL_ERROR, notice_only=True, error=error)
