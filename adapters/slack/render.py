"""How an answer looks in Slack: Markdown, buttons, and splitting long text.

Slack renders standard Markdown in ``markdown_text`` (12,000 characters) and in ``markdown``
blocks (12,000 characters in total per message). ``markdown_text`` cannot be combined with
blocks, so a message that carries buttons sends its text as a markdown block instead.
Half-written Markdown is safe here (Slack's renderer is lenient; native streams carry it
anyway), so streaming writes use the same form as final ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from adapters.slack import controls
from bot.platform import Write, split_markdown, utf16_len

MAX_CHARS = 12_000  # markdown_text / markdown blocks / one native stream (UTF-16 units, to be safe)
PREVIEW_CHARS = 150  # the notification text that goes with blocks

STOP_SHORTCUT = "stop_answer"  # a message shortcut: Stop while a native stream runs


@dataclass(slots=True)
class Payload:
    """Keyword arguments for chat.postMessage / chat.update (text fields only)."""

    markdown_text: str | None = None
    text: str | None = None
    blocks: list[dict] = field(default_factory=list)

    def kwargs(self) -> dict:
        if self.blocks:
            return {"text": self.text or " ", "blocks": self.blocks}
        return {"markdown_text": self.markdown_text or "…"}


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def reasoning_block(reasoning: str) -> dict:
    # Slack has no collapsible text; a context block keeps the reasoning small and grey.
    text = reasoning.strip()
    if len(text) > 2900:
        text = text[:2899] + "…"
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": f"_thinking:_ {text}"}]}


def payload(text: str, write: Write) -> Payload:
    body = text if text.strip() else "…"
    drawn = controls.blocks(write.controls)
    if not drawn and not write.reasoning:
        return Payload(markdown_text=body)
    blocks: list[dict] = []
    if write.reasoning:
        blocks.append(reasoning_block(write.reasoning))
    blocks.append({"type": "markdown", "text": body})
    blocks.extend(drawn)
    return Payload(text=preview(body), blocks=blocks)


def split_answer(text: str, limit: int = MAX_CHARS) -> list[str]:
    """Pieces that each fit one message, code blocks closed and reopened across a cut."""
    return split_markdown(text, limit, utf16_len)
