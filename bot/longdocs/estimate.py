"""What reading documents in parts will cost, estimated before anything is spent.

Conservative like the core's token estimate (which it uses): every CJK character counts as
a token, every call is assumed to think before it writes, and the gateway's usage is the
truth afterwards (each call is metered like any other turn's).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.tokens import IMAGE_TOKENS
from bot.usage.allowance import Allowance
from bot.usage.pricing import Prices

VISION_PAGE_PROMPT = IMAGE_TOKENS + 400  # the image and the transcription instructions
VISION_PAGE_TEXT = 1_200  # what a transcribed page adds to the text (a dense CJK page)
VISION_PAGE_OUTPUT = VISION_PAGE_TEXT + 500  # its transcription, with some thinking
PART_OVERHEAD = 700  # a part's instructions and framing, besides its text and the question
REASONING = 1_500  # the thinking before each part's notes (the model always thinks)


@dataclass(frozen=True, slots=True)
class Estimate:
    parts: int  # parts still to read (0: the text fits one prompt, no parts)
    vision_pages: int  # scanned pages still to transcribe
    prompt_tokens: int
    completion_tokens: int
    cost: float

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def exceeds(self, threshold: Allowance) -> bool:
        """Past the go-ahead threshold (a cost only counts when prices are configured)."""
        return (threshold.tokens is not None and self.tokens > threshold.tokens) or (
            threshold.cost is not None and self.cost > 0 and self.cost > threshold.cost
        )


def estimate(
    *,
    todo_tokens: int,
    todo_parts: int,
    all_parts: int,
    vision_pages: int,
    question_tokens: int,
    summary_tokens: int,
    answer_prompt: int,
    answer_tokens: int,
    whole_tokens: int,
    prices: Prices,
) -> Estimate:
    """The calls still to make: ``vision_pages`` transcriptions, ``todo_parts`` parts holding
    ``todo_tokens`` of text, and the answer (from the notes of ``all_parts`` parts, or from
    ``whole_tokens`` of text when there are no parts) over ``answer_prompt`` tokens of
    conversation, writing up to ``answer_tokens``."""
    prompt = vision_pages * VISION_PAGE_PROMPT
    completion = vision_pages * VISION_PAGE_OUTPUT
    if all_parts:
        prompt += todo_tokens + todo_parts * (PART_OVERHEAD + question_tokens)
        completion += todo_parts * (summary_tokens + REASONING)
        prompt += answer_prompt + all_parts * summary_tokens
    else:
        prompt += answer_prompt + whole_tokens
    completion += answer_tokens
    return Estimate(todo_parts, vision_pages, prompt, completion, prices.cost(prompt, 0, completion))
