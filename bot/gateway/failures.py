"""Turn what went wrong at the gateway into ``GatewayError``s with two messages.

The user message is short and says what the person in the chat can do; the log message
carries the detail for the operator (status, MiniMax code, the gateway's own words) and is
scrubbed of the API key.
"""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime

import httpx

from bot.gateway.errors import GatewayError, StreamInterrupted

TELL_OPERATOR = "tell whoever runs this bot"

USER_AUTH = f"the bot's API key was rejected: {TELL_OPERATOR}"
USER_FORBIDDEN = f"the bot's API key may not use this model: {TELL_OPERATOR}"
USER_BILLING = f"the bot's model account is out of credit: {TELL_OPERATOR}"
USER_BAD_REQUEST = "the model gateway rejected this request, so I can't answer it as it is"
USER_NOT_FOUND = f"the model gateway's address or the model's name is set wrong: {TELL_OPERATOR}"
# The gateway documents no 404: one means the request went to a path it does not serve.
NOT_FOUND_HINT = "check BYTESPIKE_BASE_URL (requests go to it + /v1/chat/completions) and BOT_MODEL"
USER_RATE_LIMIT = "the model is getting too many requests right now; please try again in a minute"
USER_UPSTREAM = "the model service is having trouble right now; please try again shortly"
USER_NETWORK = "I couldn't reach the model service; please try again shortly"
USER_TIMEOUT = "the model took too long to respond; please try again"
USER_SENSITIVE = "the model's provider refused this as sensitive content"
USER_CONTEXT = "this conversation is too long for the model: start a new thread with /new"
USER_INTERRUPTED = "the answer was cut off because the connection to the model broke"
USER_BAD_BODY = "the model gateway sent an answer I couldn't read; please try again"
USER_NO_START = "the model did not start answering in time; please try again"

# MiniMax base_resp.status_code → (kind, retryable, user message)
MINIMAX_CODES: dict[int, tuple[str, bool, str]] = {
    1000: ("upstream", True, USER_UPSTREAM),
    1001: ("timeout", True, USER_TIMEOUT),
    1002: ("rate_limit", True, USER_RATE_LIMIT),
    1004: ("auth", False, USER_AUTH),
    1008: ("billing", False, USER_BILLING),
    1024: ("upstream", True, USER_UPSTREAM),
    1026: ("content_filter", False, USER_SENSITIVE),
    1027: ("content_filter", False, USER_SENSITIVE),
    1033: ("upstream", True, USER_UPSTREAM),
    1039: ("context", False, USER_CONTEXT),
    2013: ("bad_request", False, USER_BAD_REQUEST),
}

# HTTP status → (kind, retryable, user message); 5xx is handled by range.
HTTP_STATUSES: dict[int, tuple[str, bool, str]] = {
    400: ("bad_request", False, USER_BAD_REQUEST),
    401: ("auth", False, USER_AUTH),
    402: ("billing", False, USER_BILLING),
    403: ("auth", False, USER_FORBIDDEN),
    404: ("bad_request", False, USER_NOT_FOUND),
    408: ("timeout", True, USER_TIMEOUT),
    409: ("upstream", True, USER_UPSTREAM),
    413: ("context", False, USER_CONTEXT),
    422: ("bad_request", False, USER_BAD_REQUEST),
    429: ("rate_limit", True, USER_RATE_LIMIT),
}


def scrub(text: str, secret: str | None) -> str:
    if secret and secret in text:
        text = text.replace(secret, "[redacted]")
    return text


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``Retry-After`` (seconds or HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def gateway_message(body: bytes | str) -> str:
    """The gateway's own explanation, from any of the error shapes it may use."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:500]
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:500]
        if isinstance(err, str):
            return err[:500]
        base = data.get("base_resp")
        if isinstance(base, dict) and base.get("status_msg"):
            return str(base["status_msg"])[:500]
        if data.get("message"):
            return str(data["message"])[:500]
    return text.strip()[:500]


def base_resp_code(data: object) -> tuple[int, str] | None:
    """A non-zero MiniMax ``base_resp.status_code`` in a decoded body or chunk."""
    if not isinstance(data, dict):
        return None
    base = data.get("base_resp")
    if not isinstance(base, dict):
        return None
    code = base.get("status_code")
    if code is None:
        return None
    try:
        code = int(code)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an infinite float
        return None
    if code == 0:
        return None
    return code, str(base.get("status_msg") or "")


def from_status(status: int, body: bytes, headers: httpx.Headers, secret: str | None) -> GatewayError:
    detail = scrub(gateway_message(body), secret)
    # A MiniMax code in an error body says more than the HTTP status.
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = None
    minimax = base_resp_code(decoded)
    if minimax is not None:
        err = from_base_resp(*minimax, secret=secret, status=status)
        err.retry_after = parse_retry_after(headers)
        return err
    if status in HTTP_STATUSES:
        kind, retryable, user = HTTP_STATUSES[status]
    elif status >= 500:
        kind, retryable, user = "upstream", True, USER_UPSTREAM
    else:
        kind, retryable, user = "bad_request", False, USER_BAD_REQUEST
    hint = f" ({NOT_FOUND_HINT})" if status == 404 else ""
    return GatewayError(
        user,
        f"gateway answered HTTP {status}: {detail or '(no detail)'}{hint}",
        status=status,
        retryable=retryable,
        retry_after=parse_retry_after(headers),
        kind=kind,
    )


def from_base_resp(code: int, message: str, *, secret: str | None, status: int | None = 200) -> GatewayError:
    kind, retryable, user = MINIMAX_CODES.get(code, ("upstream", False, USER_UPSTREAM))
    return GatewayError(
        user,
        f"gateway reported MiniMax error {code} (HTTP {status}): {scrub(message, secret) or '(no detail)'}",
        status=status,
        code=code,
        retryable=retryable,
        kind=kind,
    )


def from_stream_error(err: object, secret: str | None) -> GatewayError:
    """An ``{"error": …}`` object sent inside the stream instead of a chunk."""
    if isinstance(err, dict):
        message = str(err.get("message") or err)
        code = err.get("code")
    else:
        message, code = str(err), None
    status = code if isinstance(code, int) and 400 <= code < 600 else None
    if status in HTTP_STATUSES:
        kind, retryable, user = HTTP_STATUSES[status]
    else:
        kind, retryable, user = "upstream", True, USER_UPSTREAM
    return GatewayError(
        user,
        f"gateway sent an error inside the stream: {scrub(message, secret)[:500]}",
        status=status,
        retryable=retryable,
        kind=kind,
    )


def from_transport(exc: Exception, url: str) -> GatewayError:
    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return GatewayError(USER_TIMEOUT, f"gateway {url}: {name} {exc}".strip(), retryable=True, kind="timeout")
    return GatewayError(USER_NETWORK, f"gateway {url}: {name} {exc}".strip(), retryable=True, kind="network")


def truncated(url: str) -> GatewayError:
    return GatewayError(
        USER_NETWORK,
        f"gateway {url}: the stream ended before [DONE] and without a finish_reason",
        retryable=True,
        kind="network",
    )


def bad_body(url: str, detail: str) -> GatewayError:
    return GatewayError(USER_BAD_BODY, f"gateway {url}: unreadable answer: {detail}", retryable=True, kind="bad_body")


def unreadable_stream(url: str, bad_chunks: int) -> GatewayError:
    """A stream that ended without a single chunk we could read (garbage, or nothing)."""
    what = f"all {bad_chunks} chunk(s) were unreadable" if bad_chunks else "it held no chunk at all"
    return GatewayError(USER_BAD_BODY, f"gateway {url}: unreadable answer: {what}", retryable=True, kind="bad_body")


def no_start(url: str, budget: float, attempts: int, last: GatewayError | None) -> GatewayError:
    """The answer had not begun when the answer-start budget ran out."""
    cause = f"; last failure: {last.log_message}" if last is not None else ""
    return GatewayError(
        USER_NO_START,
        f"gateway {url}: no answer began within {budget:g}s ({attempts} attempt(s)){cause}",
        retryable=False,
        kind="timeout",
    )


def interrupted(cause: GatewayError) -> StreamInterrupted:
    """The stream broke after events were delivered: keep the partial answer."""
    user = USER_INTERRUPTED
    if cause.kind == "content_filter":
        user = f"the answer was cut off: {USER_SENSITIVE}"
    elif cause.kind == "context":
        user = f"the answer was cut off: {USER_CONTEXT}"
    return StreamInterrupted(
        user,
        f"stream interrupted after partial output: {cause.log_message}",
        status=cause.status,
        code=cause.code,
        retryable=False,
        kind="interrupted",
    )


def wait_too_long(err: GatewayError) -> GatewayError:
    """The gateway asked us to wait longer than we are willing to: say how long."""
    if err.retry_after is not None:
        minutes = max(1, round(err.retry_after / 60))
        when = f"{minutes} minute{'s' if minutes > 1 else ''}"
        err.user_message = f"the model is rate limited right now; please try again in about {when}"
        err.log_message = f"{err.log_message} (Retry-After {err.retry_after:.0f}s is over the cap)"
        err.args = (err.log_message,)
    return err


def exhausted(err: GatewayError, attempts: int) -> GatewayError:
    """Give up after retries: same user message, the count in the log."""
    err.log_message = f"{err.log_message} (gave up after {attempts} attempts)"
    err.args = (err.log_message,)
    return err
