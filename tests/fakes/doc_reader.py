"""A model that follows the instructions of reading in parts (``bot.longdocs``), for the fake
gateway's ``default``: a part's notes cite the first page of the part, scanned pages are
transcribed with their number, and an answer cites pages the test can check against.

    gw.default = DocumentModel(answer="建议定价 109 元 [page 55]。")
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.gateway import Answer, last_user_text

PART = re.compile(r'part="(\d+) of (\d+)" covers="([^"]*)"')
PAGE_ASKED = re.compile(r"page (\d+):")


def system_of(body: dict[str, Any]) -> str:
    first = (body.get("messages") or [{}])[0]
    return first.get("content", "") if first.get("role") == "system" else ""


def is_part(body: dict[str, Any]) -> bool:
    return system_of(body).startswith("You are reading one part")


def is_vision(body: dict[str, Any]) -> bool:
    return system_of(body).startswith("You transcribe scanned")


def part_of(body: dict[str, Any]) -> tuple[int, int, str]:
    """(part, parts, what it covers) of a part's request."""
    match = PART.search(last_user_text(body))
    assert match, "not a part request"
    return int(match.group(1)), int(match.group(2)), match.group(3)


def first_page(covers: str) -> int:
    return int(re.search(r"[\d,]+", covers).group(0).replace(",", ""))  # type: ignore[union-attr]


def pages_asked(body: dict[str, Any]) -> list[int]:
    blocks = body["messages"][-1]["content"]
    return [int(m.group(1)) for b in blocks if b.get("type") == "text" for m in [PAGE_ASKED.fullmatch(b["text"])] if m]


@dataclass
class DocumentModel:
    answer: str = "建议定价 109 元 [page 55]。"
    part_delay: float = 0.0  # seconds before each part's notes begin
    hold: Any = None  # an asyncio.Event: parts past ``hold_after`` wait for it
    hold_after: int = 0
    parts_seen: list[int] = field(default_factory=list)

    def __call__(self, body: dict[str, Any]) -> Answer:
        if is_part(body):
            number, parts, covers = part_of(body)
            self.parts_seen.append(number)
            page = first_page(covers)
            wait = self.hold if self.hold is not None and len(self.parts_seen) > self.hold_after else None
            return Answer(
                text=f"- 第 {number} 部分（{covers}）：价格带 89–129 元 [page {page}]",
                reasoning="notes",
                first_token_delay=self.part_delay,
                wait_for=wait,
            )
        if is_vision(body):
            return Answer(
                text="\n".join(f"=== page {n} ===\n第{n}页 扫描件\n建议定价一百零九元" for n in pages_asked(body)),
                reasoning="transcribe",
            )
        return Answer(text=self.answer, reasoning="answer")
