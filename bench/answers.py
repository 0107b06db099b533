"""What the benchmark asks for and what the fake gateway answers, shared by both processes.

A benchmark message carries its answer's shape in its own text ("bench tokens=… rate=…"),
so one fake-gateway process serves every scenario and each answer is known in advance
(the benchmark checks that every conversation ends showing exactly it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

WORDS = (
    "alpha",
    "beta",
    "gamma",
    "delta",
    "stream",
    "token",
    "answer",
    "thread",
    "model",
    "gateway",
    "surface",
    "pacing",
    "chat",
    "edit",
    "flush",
    "store",
)


@dataclass(frozen=True, slots=True)
class AnswerShape:
    tokens: int  # chunks of visible text; one chunk is about one token (chunk_chars ≈ 3.6)
    rate: float  # chunks per second (0: as fast as the network goes)
    ttft: float  # seconds before the first chunk
    chunk_chars: int = 4
    think_tokens: int = 6  # inline <think> reasoning before the answer, as MiniMax sends it
    tag: str = ""  # makes every message unique

    def message(self) -> str:
        return (
            f"bench {self.tag} tokens={self.tokens} rate={self.rate} ttft={self.ttft} "
            f"chunk={self.chunk_chars} think={self.think_tokens}"
        )

    @classmethod
    def parse(cls, text: str) -> AnswerShape | None:
        if not text.startswith("bench "):
            return None
        fields = dict(item.split("=", 1) for item in text.split()[2:] if "=" in item)
        return cls(
            tokens=int(fields["tokens"]),
            rate=float(fields["rate"]),
            ttft=float(fields["ttft"]),
            chunk_chars=int(fields["chunk"]),
            think_tokens=int(fields["think"]),
            tag=text.split()[1],
        )

    @property
    def text(self) -> str:
        return answer_text(self.tokens * self.chunk_chars)

    @property
    def reasoning(self) -> str:
        return answer_text(self.think_tokens * self.chunk_chars)

    @property
    def chunks(self) -> int:
        """Content chunks the gateway streams (reasoning, tags and text), i.e. tokens."""
        full = f"<think>{self.reasoning}</think>\n\n{self.text}" if self.think_tokens else self.text
        return -(-len(full) // self.chunk_chars)


@lru_cache(maxsize=64)  # the benchmark asks for the same few lengths many times
def answer_text(chars: int) -> str:
    """Deterministic prose of ``chars`` characters, with paragraphs now and then."""
    out: list[str] = []
    size = 0
    i = 0
    while size < chars:
        word = WORDS[(i * 7 + i // 16) % len(WORDS)]
        sep = ".\n\n" if i % 40 == 39 else " "
        out.append(word + sep)
        size += len(word) + len(sep)
        i += 1
    return "".join(out)[:chars].rstrip() or "ok"
