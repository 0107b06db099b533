"""Gateway errors, each with one message for the chat user and one for the operator's log."""

from __future__ import annotations


class GatewayError(Exception):
    """A call to the model failed.

    ``user_message`` is safe to show in a chat; ``log_message`` is for the operator and
    never contains the API key. ``retryable`` says whether the same request could succeed
    later. ``partial`` is set when a stream broke after some text had arrived.
    """

    def __init__(
        self,
        user_message: str,
        log_message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        kind: str = "error",
    ) -> None:
        super().__init__(log_message)
        self.user_message = user_message
        self.log_message = log_message
        self.status = status
        self.code = code  # MiniMax base_resp.status_code, when there was one
        self.retryable = retryable
        self.retry_after = retry_after
        self.kind = kind  # auth, billing, bad_request, rate_limit, upstream, network, timeout,
        #                  content_filter, context, interrupted, capability, bad_body


class StreamInterrupted(GatewayError):
    """The stream broke after events had been yielded: the caller keeps what it has."""


class CapabilityError(GatewayError):
    """The request needs a capability (vision, tools, structured output) the model lacks."""
