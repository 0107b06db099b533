"""What the configured model may be asked to do, checked before a call.

MiniMax documents M2.x as text-only while the gateway's card lists image input, so each
capability is an operator switch. A request that needs a switched-off capability fails
early with a message that tells the user why, instead of silently losing the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.gateway.errors import CapabilityError
from bot.gateway.events import ChatRequest

NO_VISION = "this model is configured without image input, so I can't see the picture"
NO_TOOLS = "this model is configured without tool use, so I can't use tools for this"
NO_STRUCTURED = "this model is configured without structured output, so I can't do this here"


def has_images(messages: list[dict[str, Any]]) -> bool:
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") in ("image_url", "image"):
                    return True
    return False


@dataclass(frozen=True, slots=True)
class ModelCapabilities:
    vision: bool = True
    tools: bool = True
    structured_output: bool = True

    @classmethod
    def from_settings(cls, settings: Any) -> ModelCapabilities:
        return cls(
            vision=bool(settings.vision),
            tools=bool(settings.tools),
            structured_output=bool(settings.structured_output),
        )

    def check(self, request: ChatRequest) -> None:
        """Raise ``CapabilityError`` if ``request`` needs something switched off."""
        if not self.vision and has_images(request.messages):
            raise CapabilityError(NO_VISION, "request has image blocks but BOT_VISION is off", kind="capability")
        if not self.tools and request.tools:
            raise CapabilityError(NO_TOOLS, "request has tools but BOT_TOOLS is off", kind="capability")
        if not self.structured_output and request.response_format:
            raise CapabilityError(
                NO_STRUCTURED, "request has response_format but BOT_STRUCTURED_OUTPUT is off", kind="capability"
            )
