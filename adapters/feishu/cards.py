"""What the bot's Feishu messages look like: card JSON 2.0, its controls, and a click read back.

Every answer is a card: its text in one Markdown component (``answer``), the tool calls at work
(``steps``, one line each) and a status line while the model thinks (``status``), and the
core's controls below as buttons (a copy variant's refinements as a select). A control's value
carries its ``Press`` encoding and where the card sits (its conversation's thread, the message
it answers), so a click is routed without a look-up. Reasoning is never drawn.

Sizes: Feishu refuses a card over 30 KB; ``measure`` counts what the answer adds to the
card's JSON (UTF-8 bytes, escapes included), and ``FEISHU_CARD_TEXT_BYTES`` keeps the text
well below, leaving room for the controls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.platform import Button, Choice, Controls, Press, Step

ANSWER = "answer"  # element_id of the answer's Markdown
STATUS = "status"  # element_id of the status line
STEPS = "steps"  # element_id of the tool calls at work (one line each)
CONTROLS = "controls"  # element_id of the row of buttons (lines are inserted before it)
# The typewriter: Feishu prints what a push adds a few characters at a time; its default
# (one character every 70 ms) falls far behind a model writing 40 tokens a second.
STREAMING_CONFIG = {"print_frequency_ms": {"default": 30}, "print_step": {"default": 3}, "print_strategy": "fast"}
SUMMARY_CHARS = 60  # the chat list's preview of a card
_MARKUP = re.compile(r"[*_`#>~|\[\]]+")


def measure(text: str) -> int:
    """Bytes ``text`` takes inside the card's JSON."""
    return len(json.dumps(text, ensure_ascii=False).encode()) - 2


def summary(text: str) -> str:
    """The chat list's preview: the first line that says something, without Markdown."""
    for line in text.splitlines():
        plain = _MARKUP.sub("", line).strip()
        if plain:
            return plain[:SUMMARY_CHARS]
    return "…"


@dataclass(frozen=True, slots=True)
class Where:
    """Where a card sits: its conversation's thread ("" for the whole chat) and the message it
    answers ("" in a private chat). Carried in every control's value."""

    thread: str = ""
    reply_to: str = ""


def status_line(status: str) -> str:
    return f"⏳ _{status}_"


def steps_lines(steps: Sequence[Step]) -> str:
    """One line per tool call, in order: "🔧 market size ✓", "🔧 cms · search ✗ (timed out)"."""
    lines = []
    for step in steps:
        line = f"🔧 {step.title} {step.mark}"
        if step.detail and step.state in ("pending", "error"):
            line += f" ({step.detail[:80]})"
        lines.append(line)
    return "\n".join(lines)


def line(element_id: str, content: str) -> dict[str, Any]:
    """A status or steps line: small Markdown under the answer."""
    return markdown(content, element_id, notation=True)


def markdown(content: str, element_id: str, *, notation: bool = False) -> dict[str, Any]:
    element: dict[str, Any] = {"tag": "markdown", "element_id": element_id, "content": content}
    if notation:
        element["text_size"] = "notation"
    return element


def card(
    text: str | None,
    *,
    controls: Controls = (),
    where: Where = Where(),
    streaming: bool = False,
    status: str = "",
    steps: str = "",
    preview: str | None = None,
) -> dict[str, Any]:
    """A whole card: ``text`` (None: no answer yet), the tool calls at work, a status line,
    the controls."""
    elements: list[dict[str, Any]] = []
    if text is not None:
        elements.append(markdown(text, ANSWER))
    if steps:
        elements.append(line(STEPS, steps))
    if status:
        elements.append(line(STATUS, status_line(status)))
    elements += draw(controls, where)
    config: dict[str, Any] = {
        "update_multi": True,
        "streaming_mode": streaming,
        "summary": {"content": preview if preview is not None else summary(text or status)},
    }
    if streaming:
        config["streaming_config"] = STREAMING_CONFIG
    return {"schema": "2.0", "config": config, "body": {"elements": elements}}


# --- controls ---
def _value(data: str, where: Where) -> dict[str, str]:
    value = {"p": data}
    if where.thread:
        value["t"] = where.thread
    if where.reply_to:
        value["r"] = where.reply_to
    return value


def button(control: Button, where: Where) -> dict[str, Any]:
    element: dict[str, Any] = {
        "tag": "button",
        "text": {"tag": "plain_text", "content": control.label},
        "size": "small",
        "type": {"primary": "primary", "danger": "danger"}.get(control.style, "default"),
        "behaviors": [{"type": "callback", "value": _value(control.press.encode(), where)}],
    }
    return element


def select(choice: Choice, where: Where) -> dict[str, Any]:
    """A variant's refinements: one select whose options carry the presses."""
    return {
        "tag": "select_static",
        "placeholder": {"tag": "plain_text", "content": choice.placeholder},
        "width": "fill",
        "options": [
            {"text": {"tag": "plain_text", "content": o.label}, "value": o.press.encode()} for o in choice.options
        ],
        "behaviors": [{"type": "callback", "value": _value("", where)}],
    }


def draw(controls: Controls, where: Where) -> list[dict[str, Any]]:
    """Selects first (one per row), then every button in one row that wraps."""
    elements: list[dict[str, Any]] = [select(row, where) for row in controls if isinstance(row, Choice)]
    buttons = [button(b, where) for row in controls if not isinstance(row, Choice) for b in row]
    if buttons:
        elements.append(
            {
                "tag": "column_set",
                "element_id": CONTROLS,
                "flex_mode": "flow",
                "horizontal_spacing": "small",
                "columns": [{"tag": "column", "width": "auto", "elements": [b]} for b in buttons],
            }
        )
    return elements


@dataclass(frozen=True, slots=True)
class Pressed:
    """A click on one of our controls, read back from ``card.action.trigger``."""

    data: str
    where: Where


def pressed(action: dict[str, Any]) -> Pressed | None:
    """The control's data (a select's chosen option, else the button's) and where its card
    sits; None for an action that is not one of ours."""
    value = action.get("value")
    value = value if isinstance(value, dict) else {}
    option = action.get("option")
    data = option if isinstance(option, str) and Press.decode(option) is not None else value.get("p")
    if not isinstance(data, str) or not data:
        return None
    thread, reply_to = value.get("t", ""), value.get("r", "")
    return Pressed(
        data, Where(thread if isinstance(thread, str) else "", reply_to if isinstance(reply_to, str) else "")
    )


def entity(card_id: str) -> dict[str, Any]:
    """A message's content that shows a CardKit card entity."""
    return {"type": "card", "data": {"card_id": card_id}}


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def toast(text: str) -> dict[str, Any]:
    """What a card callback answers: a toast for the clicker alone."""
    return {"toast": {"type": "info", "content": text}}
