"""Prompt assembly for a long thread: 2,000 messages filling ~95 % of the token budget."""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass

from bot.core.prompt import build_prompt
from bot.core.service import DEFAULT_SYSTEM_PROMPT
from bot.core.tokens import MESSAGE_OVERHEAD, estimate_tokens
from bot.platform.messages import ConversationKey
from bot.process.runtime import Runtime
from bot.store.repo import NewPart, StoredMessage, StoredPart

FILL = 0.95  # share of the budget the thread uses: near it, without triggering a trim
VOCAB = (
    "the",
    "stream",
    "answer",
    "latency",
    "budget",
    "thread",
    "message",
    "tokens",
    "cache",
    "prefix",
    "model",
    "gateway",
    "pacing",
    "edit",
    "surface",
    "database",
    "turn",
    "flush",
    "我们",
    "模型",
    "回答",
    "上下文",
)


def _text(rng: random.Random, tokens: int) -> str:
    """Prose of about ``tokens`` estimated tokens, mixed English and Chinese."""
    words: list[str] = []
    while estimate_tokens(" ".join(words)) < tokens:
        words.append(rng.choice(VOCAB))
    return " ".join(words)


def thread_texts(count: int, budget_tokens: int, seed: int = 7) -> list[tuple[str, str]]:
    """(role, text) pairs, alternating user / assistant, answers longer than questions."""
    rng = random.Random(seed)
    per_message = int(budget_tokens * FILL / count) - MESSAGE_OVERHEAD
    out = []
    for i in range(count):
        role = "user" if i % 2 == 0 else "assistant"
        share = 0.5 if role == "user" else 1.5
        out.append((role, _text(rng, int(per_message * share))))
    return out


def stored(texts: list[tuple[str, str]]) -> list[StoredMessage]:
    return [
        StoredMessage(
            id=i + 1,
            seq=i + 1,
            role=role,
            author_name="Bench User" if role == "user" else "",
            status="answered" if role == "user" else "complete",
            turn_id=(i // 2) + 1 if role == "assistant" else None,
            parts=[StoredPart("text", text)],
        )
        for i, (role, text) in enumerate(texts)
    ]


@dataclass
class PromptResult:
    messages: int
    estimated_tokens: int
    budget_tokens: int
    trimmed: bool
    build_ms: list[float]
    load_ms: list[float]
    loaded_messages: int


def _ms(samples: list[float]) -> list[float]:
    return [s * 1000 for s in samples]


async def measure(rt: Runtime, count: int, repeats: int) -> PromptResult:
    settings = rt.settings
    budget = settings.context_tokens - settings.max_tokens
    texts = thread_texts(count, budget)
    history = stored(texts)

    def build(h: list[StoredMessage]):
        return build_prompt(
            DEFAULT_SYSTEM_PROMPT, h, {}, budget_tokens=budget, max_images=settings.max_images, vision=settings.vision
        )

    prompt = build(history)
    build_times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        build(history)
        build_times.append(time.perf_counter() - t0)

    # The same thread in the store, loaded the way a turn loads it.
    store = rt.store
    conv = await store.conversation(ConversationKey("bench", "local", f"long-thread-{count}"))
    assert conv is not None
    for role, text in texts:
        await store.add_message(
            conv.id, role, [NewPart("text", text=text)], status="answered" if role == "user" else "complete"
        )
    load_times = []
    loaded = []
    for _ in range(max(3, repeats // 4)):
        t0 = time.perf_counter()
        loaded = await store.history(conv.id, conv.history_start)
        load_times.append(time.perf_counter() - t0)
    # Assembly from what the store returned must cost the same as from the synthetic list.
    t0 = time.perf_counter()
    build(loaded)
    build_times.append(time.perf_counter() - t0)
    return PromptResult(
        messages=count,
        estimated_tokens=prompt.estimated_tokens,
        budget_tokens=budget,
        trimmed=prompt.new_history_start is not None,
        build_ms=_ms(build_times),
        load_ms=_ms(load_times),
        loaded_messages=len(loaded),
    )


def median(samples: list[float]) -> float:
    return statistics.median(samples) if samples else float("nan")
