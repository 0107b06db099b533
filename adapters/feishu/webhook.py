"""The HTTP callback at ``/feishu/events`` (``FEISHU_CONNECTION=webhook``): checks first, then
the event is handed in and acknowledged at once.

Order matters: the body is capped before it is read; with an Encrypt Key the signature
(``X-Lark-Signature`` = sha256(timestamp + nonce + key + body)) is checked on the raw body
and the body decrypted (AES-256-CBC, the SDK's ``AESCipher``); then the verification token;
``url_verification`` is answered with its challenge. A delivery that fails a check is
refused with 4xx and nothing is parsed further, handed in or stored; nothing here answers
500 (Feishu would deliver the same body again, to fail the same way). lark-oapi's own
dispatcher is not used: it answers a forged request with a 500 and runs handlers
synchronously.

Replays: a signed body delivered again is the same event (the inbox drops it by its id), and
events older than 30 minutes are dropped by the adapter whatever carried them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from lark_oapi.core.utils import AESCipher
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from bot.platform import BodyProblem, read_capped

log = logging.getLogger(__name__)

Handler = Callable[[dict], Awaitable[dict | None] | None]


class CallbackEndpoint:
    """``await endpoint.handle(request)`` for POST /feishu/events."""

    def __init__(
        self, *, verification_token: str, encrypt_key: str, max_body: int, handle: Handler, ready: Callable[[], bool]
    ) -> None:
        self._token = verification_token
        self._key = encrypt_key
        self._cipher = AESCipher(encrypt_key) if encrypt_key else None
        self.max_body = max_body
        self.handle = handle
        self.ready = ready

    async def handle_request(self, request: Request) -> Response:
        body = await read_capped(request, self.max_body)
        if isinstance(body, BodyProblem):
            log.warning("feishu: callback refused: %s", body.name.lower().replace("_", " "))
            return PlainTextResponse(body.name.lower(), status_code=body.value)
        outer = _object(body)
        if outer is None:
            log.warning("feishu: callback with a body that is no JSON object refused")
            return PlainTextResponse("not a JSON object", status_code=400)
        if "encrypt" in outer:
            if self._cipher is None:
                log.warning("feishu: encrypted callback refused: FEISHU_ENCRYPT_KEY is not set")
                return PlainTextResponse("encrypted, and no key to read it", status_code=400)
            try:
                event = _object(self._cipher.decrypt_str(str(outer["encrypt"])).encode())
            except (ValueError, UnicodeDecodeError, TypeError):
                event = None
            if event is None:
                log.warning("feishu: callback that does not decrypt refused")
                return PlainTextResponse("does not decrypt", status_code=400)
        elif self._cipher is not None:
            log.warning("feishu: plain callback refused: this app's events are encrypted")
            return PlainTextResponse("expected an encrypted body", status_code=400)
        else:
            event = outer
        verification = event.get("type") == "url_verification"
        if self._cipher is not None and not verification and not self._signed(request, body):
            log.warning("feishu: callback with a missing or wrong signature refused")
            return PlainTextResponse("invalid signature", status_code=401)
        header = event.get("header")
        header = header if isinstance(header, dict) else {}
        token = event.get("token") if "token" in event else header.get("token")
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), self._token.encode()):
            log.warning("feishu: callback with a wrong verification token refused")
            return PlainTextResponse("invalid verification token", status_code=401)
        if verification:
            return JSONResponse({"challenge": event.get("challenge", "")})
        if not self.ready():
            return PlainTextResponse("starting", status_code=503)  # Feishu delivers it again
        answer = self.handle(event)
        data = (await answer) if answer is not None else None
        return JSONResponse(data or {})

    def _signed(self, request: Request, body: bytes) -> bool:
        timestamp = request.headers.get("x-lark-request-timestamp", "")
        nonce = request.headers.get("x-lark-request-nonce", "")
        signature = request.headers.get("x-lark-signature", "")
        if not timestamp or not nonce or not signature:
            return False
        expected = hashlib.sha256((timestamp + nonce + self._key).encode() + body).hexdigest()
        return hmac.compare_digest(expected, signature)


def _object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None
