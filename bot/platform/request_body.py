"""Reading a request body with a cap, before anything else is done with it.

``Request.body()`` reads whatever a client sends; a webhook endpoint must refuse a huge body
without holding it in memory. A Content-Length above the cap is refused unread; a body sent
without one (chunked) is read only up to the cap.
"""

from __future__ import annotations

from enum import Enum

from starlette.requests import ClientDisconnect, Request


class BodyProblem(Enum):
    TOO_LARGE = 413
    BAD_LENGTH = 400


async def read_capped(request: Request, cap: int) -> bytes | BodyProblem:
    """The body, or why it was not read (the status code to answer with)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            return BodyProblem.BAD_LENGTH
        if int(declared) > cap:
            return BodyProblem.TOO_LARGE
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                return BodyProblem.TOO_LARGE
            chunks.append(chunk)
    except ClientDisconnect:
        return BodyProblem.BAD_LENGTH
    return b"".join(chunks)
