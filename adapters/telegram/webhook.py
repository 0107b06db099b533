"""The webhook route on the project's ASGI app.

Telegram signs nothing; it sends back the secret given to setWebhook in a header, so a
request without the right one is refused with 403 before anything is parsed or stored.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.platform import BodyProblem, read_capped

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEFAULT_PATH = "/telegram/webhook"
MAX_BODY = 1024 * 1024


def path_of(webhook_url: str | None) -> str:
    """The route's path: the path of TELEGRAM_WEBHOOK_URL (a proxy may sit in front)."""
    path = urlsplit(webhook_url).path if webhook_url else ""
    return path if path and path != "/" else DEFAULT_PATH


def webhook_route(path: str, secret: str, deliver: Callable[[dict], Awaitable[bool]]) -> Route:
    """``deliver`` queues a parsed update; it returns False when the bot is not running."""
    expected = secret.encode()

    async def endpoint(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            log.warning("telegram webhook: request with a missing or wrong secret token refused")
            return JSONResponse({"ok": False, "description": "forbidden"}, status_code=403)
        body = await read_capped(request, MAX_BODY)
        if isinstance(body, BodyProblem):
            log.warning("telegram webhook: request refused (%s)", body.name.lower().replace("_", " "))
            return JSONResponse({"ok": False, "description": body.name.lower()}, status_code=body.value)
        # Past the secret, the body is from Telegram, which redelivers a non-2xx for ever:
        # what cannot be an update is acknowledged, logged and dropped.
        try:
            data = json.loads(body)
        except ValueError:
            log.warning("telegram webhook: dropped a body that is not JSON (%d bytes)", len(body))
            return JSONResponse({"ok": True})
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            log.warning("telegram webhook: dropped a body that is not an update (%s)", type(data).__name__)
            return JSONResponse({"ok": True})
        if not await deliver(data):
            # Not started yet (or stopping): Telegram retries later, nothing is lost.
            return JSONResponse({"ok": False, "description": "not ready"}, status_code=503)
        return JSONResponse({"ok": True})

    return Route(path, endpoint, methods=["POST"], name="telegram-webhook")
