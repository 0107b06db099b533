"""The HTTP Events API endpoint: checks first, then bolt.

Order matters: the body is capped before it is read (a 150 MB body must not be held in
memory), the signature and timestamp are checked before anything is parsed (401, nothing
parsed or stored), and only then is the body parsed (400 for what Slack never sends).
A request that passes is handed to bolt through its public request/response API.
Nothing here answers 500: Slack retries 5xx, and a body that failed once fails again.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from slack_bolt.adapter.starlette.async_handler import to_async_bolt_request, to_starlette_response
from slack_sdk.signature import SignatureVerifier
from starlette.responses import PlainTextResponse, Response

from bot.platform import BodyProblem, read_capped

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp
    from starlette.requests import Request

log = logging.getLogger(__name__)

# Slack's own payloads stay far below this (an event with a full 40,000-character message and
# its blocks is ~200 KB); SLACK_MAX_BODY overrides it.
DEFAULT_MAX_BODY = 1024 * 1024


class EventsEndpoint:
    """``await endpoint.handle(request)`` for POST /slack/events."""

    def __init__(self, app: AsyncApp, signing_secret: str, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body
        self._verifier = SignatureVerifier(signing_secret)

    async def handle(self, request: Request) -> Response:
        body = await read_capped(request, self.max_body)
        if isinstance(body, BodyProblem):
            log.warning("slack: events request refused: %s", body.name.lower().replace("_", " "))
            return PlainTextResponse(body.name.lower(), status_code=body.value)
        if not self._signed(request, body):
            log.warning("slack: events request with a missing, wrong or stale signature refused")
            return PlainTextResponse("invalid signature", status_code=401)
        problem = _unparseable(body, request.headers.get("content-type"))
        if problem is not None:
            log.warning("slack: signed events request dropped: %s", problem)
            return PlainTextResponse(problem, status_code=400)
        try:
            bolt_request = to_async_bolt_request(request, body)
            bolt_response = await self.app.async_dispatch(bolt_request)
        except Exception as exc:  # noqa: BLE001 - a shape bolt cannot route: answered, not retried
            log.warning(
                "slack: signed events request bolt could not handle dropped: %s: %s", type(exc).__name__, str(exc)[:200]
            )
            return PlainTextResponse("unprocessable", status_code=400)
        if bolt_response.status >= 500:
            # Bolt logged the error; a retry of the same body would fail the same way.
            log.warning("slack: signed events request bolt failed on (status %s) dropped", bolt_response.status)
            return PlainTextResponse("unprocessable", status_code=400)
        return to_starlette_response(bolt_response)

    def _signed(self, request: Request, body: bytes) -> bool:
        timestamp = request.headers.get("x-slack-request-timestamp", "")
        signature = request.headers.get("x-slack-signature", "")
        if not timestamp.isdigit() or not signature:
            return False
        try:
            body.decode("utf-8")  # Slack signs UTF-8 text; the verifier raises on anything else
        except UnicodeDecodeError:
            return False
        # is_valid also refuses timestamps more than five minutes away (replays).
        return self._verifier.is_valid(body, timestamp, signature)


def _unparseable(body: bytes, content_type: str | None) -> str | None:
    """Why bolt could not parse ``body`` (mirroring its ``parse_body`` rules), or None."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "body is not UTF-8"
    if not text:
        return "empty body"
    media = (content_type or "").split(";")[0].strip().lower()
    try:
        if media == "application/json" or text.startswith("{"):
            data = json.loads(text)
        elif "payload" in text:
            payload = dict(parse_qsl(text, keep_blank_values=True)).get("payload")
            data = json.loads(payload) if payload is not None else {}
        else:
            data = dict(parse_qsl(text, keep_blank_values=True, strict_parsing=True))
    except ValueError as exc:
        return f"body is neither JSON nor a form ({type(exc).__name__})"
    if not isinstance(data, dict):
        return "body is not a JSON object"
    # Bolt's matchers read these as strings; another type raises inside bolt (a 500).
    event = data.get("event")
    if not isinstance(data.get("type"), (str, type(None))) or (
        event is not None and not (isinstance(event, dict) and isinstance(event.get("type"), str))
    ):
        return "body is not shaped like a Slack request"
    return None
