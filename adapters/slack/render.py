"""How an answer looks in Slack: Markdown, buttons, and splitting long text.

Slack renders standard Markdown in ``markdown_text`` (12,000 characters) and in ``markdown``
blocks (12,000 characters in total per message). ``markdown_text`` cannot be combined with
blocks, so a message that carries buttons sends its text as a markdown block instead.
Half-written Markdown is safe here (Slack's renderer is lenient; native streams carry it
anyway), so streaming writes use the same form as final ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from bot.copywriting.refine import ACTIONS, label
from bot.core.split import split_markdown
from bot.surface import Write, utf16_len

MAX_CHARS = 12_000  # markdown_text / markdown blocks / one native stream (UTF-16 units, to be safe)
PREVIEW_CHARS = 150  # the notification text that goes with blocks
MAX_ELEMENTS = 25  # per actions block

# action_id values; the button's value is the turn id.
STOP = "answer_stop"
REGENERATE = "answer_regenerate"
FEEDBACK_UP = "answer_feedback_up"
FEEDBACK_DOWN = "answer_feedback_down"
REFINE = "answer_refine_"  # + variant number; a select whose option values are "turn:variant:action"
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


def _button(label: str, action_id: str, turn_id: int, style: str | None = None) -> dict:
    button = {"type": "button", "action_id": action_id, "value": str(turn_id),
              "text": {"type": "plain_text", "text": label, "emoji": True}}
    if style:
        button["style"] = style
    return button


def answer_buttons(turn_id: int) -> dict:
    return {"type": "actions", "block_id": "answer_actions", "elements": [
        _button("Regenerate", REGENERATE, turn_id),
        _button("👍", FEEDBACK_UP, turn_id),
        _button("👎", FEEDBACK_DOWN, turn_id),
    ]}


def stop_button(turn_id: int) -> dict:
    return {"type": "actions", "block_id": "answer_actions",
            "elements": [_button("Stop", STOP, turn_id, style="danger")]}


def language_of(text: str) -> str:
    """"zh" when Chinese characters make up a good share of ``text`` (for control labels)."""
    letters = [ch for ch in text if ch.isalpha()]
    cjk = sum(1 for ch in letters if "\u4e00" <= ch <= "\u9fff")
    return "zh" if letters and cjk >= 0.3 * len(letters) else "en"


def refine_value(turn_id: int, variant: int, action: str) -> str:
    return f"{turn_id}:{variant}:{action}"


def parse_refine_value(value: str) -> tuple[int, int, str] | None:
    """(turn id, variant number, action) from a refine option's value, or None if foreign."""
    turn, _, rest = (value or "").partition(":")
    variant, _, action = rest.partition(":")
    if not (turn.isdigit() and variant.isdigit()) or action not in ACTIONS:
        return None
    return int(turn), int(variant), action


def refine_controls(turn_id: int, variants: int, language: str = "en") -> dict:
    """One select per variant listing its one-tap refinements. A select, not buttons: six
    actions per variant would be a wall of buttons, and an overflow menu holds only five."""
    selects = []
    for number in range(1, variants + 1):
        placeholder = f"方案 {number}：改写…" if language == "zh" else f"Option {number}: refine…"
        selects.append({
            "type": "static_select", "action_id": f"{REFINE}{number}",
            "placeholder": {"type": "plain_text", "text": placeholder, "emoji": True},
            "options": [{"text": {"type": "plain_text", "text": label(action, language), "emoji": True},
                         "value": refine_value(turn_id, number, action)} for action in ACTIONS],
        })
    return {"type": "actions", "block_id": "answer_refine", "elements": selects[:MAX_ELEMENTS]}


def buttons_for(write: Write, text: str = "") -> list[dict]:
    """The controls a write carries: Stop while streaming; on the last page the answer
    buttons, preceded by refinement selects when it shows copy variants."""
    if write.notice or write.turn_id <= 0:
        return []
    if not write.final:
        return [stop_button(write.turn_id)]
    if not write.last_page:
        return []
    controls = []
    if write.variants > 0:
        controls.append(refine_controls(write.turn_id, write.variants, language_of(text)))
    controls.append(answer_buttons(write.turn_id))
    return controls


def reasoning_block(reasoning: str) -> dict:
    # Slack has no collapsible text; a context block keeps the reasoning small and grey.
    text = reasoning.strip()
    if len(text) > 2900:
        text = text[:2899] + "…"
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": f"_thinking:_ {text}"}]}


def payload(text: str, write: Write) -> Payload:
    body = text if text.strip() else "…"
    controls = buttons_for(write, body)
    if not controls and not write.reasoning:
        return Payload(markdown_text=body)
    blocks: list[dict] = []
    if write.reasoning:
        blocks.append(reasoning_block(write.reasoning))
    blocks.append({"type": "markdown", "text": body})
    blocks.extend(controls)
    return Payload(text=preview(body), blocks=blocks)


def split_answer(text: str, limit: int = MAX_CHARS) -> list[str]:
    """Pieces that each fit one message, code blocks closed and reopened across a cut."""
    return split_markdown(text, limit, utf16_len)
