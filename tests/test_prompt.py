"""Prompt assembly: cache-friendly order, trimming in large steps, images, estimates."""

from __future__ import annotations

from bot.core.prompt import build_prompt, images_wanted
from bot.core.tokens import estimate_tokens
from bot.platform.split import split_markdown
from bot.platform.surface import utf16_len
from bot.store.repo import StoredMessage, StoredPart


def history(n: int, text: str = "hello there " * 20) -> list[StoredMessage]:
    out = []
    for i in range(n):
        role = "user" if i % 2 == 0 else "assistant"
        out.append(StoredMessage(i, i + 1, role, "Ann", "answered", None, [StoredPart("text", text)]))
    return out


def test_estimate_is_conservative_for_english_and_chinese() -> None:
    english = "The quick brown fox jumps over the lazy dog. " * 100
    chinese = "小红书种草笔记需要真诚的语气和具体的使用感受。" * 100
    # ~3.6 English characters per token; Chinese ~1.4-1.5x English per content: never under.
    assert estimate_tokens(english) >= len(english) / 3.6
    assert estimate_tokens(chinese) >= len(chinese) * 0.9


def test_system_prompt_first_and_history_append_only() -> None:
    h = history(6)
    first = build_prompt("SYSTEM", h[:4], {}, budget_tokens=100_000, max_images=4)
    second = build_prompt("SYSTEM", h, {}, budget_tokens=100_000, max_images=4)
    assert first.messages[0] == {"role": "system", "content": "SYSTEM"}
    assert second.messages[: len(first.messages)] == first.messages  # same prefix: cache hits
    assert second.new_history_start is None


def test_trimming_drops_old_turns_in_one_large_step() -> None:
    h = history(200)
    per_message = build_prompt("S", h[:1], {}, budget_tokens=10**9, max_images=0).estimated_tokens
    budget = per_message * 150
    prompt = build_prompt("S", h, {}, budget_tokens=budget, max_images=0)
    assert prompt.new_history_start is not None
    assert prompt.estimated_tokens <= budget * 0.55  # room for many more turns before the next trim
    assert prompt.messages[1]["role"] == "user"
    # The next turns, built from the new start, fit without trimming again.
    rest = [m for m in h if m.seq >= prompt.new_history_start] + history(20)
    again = build_prompt("S", rest, {}, budget_tokens=budget, max_images=0)
    assert again.new_history_start is None


def test_only_the_newest_images_are_sent() -> None:
    h = []
    for i in range(6):
        parts = [StoredPart("text", f"photo {i}"), StoredPart("image", attachment_id=i, mime="image/png")]
        h.append(StoredMessage(i, i + 1, "user", "Ann", "answered", None, parts))
    wanted = images_wanted(h, 2)
    assert wanted == [5, 4]
    prompt = build_prompt("S", h, {i: b"png" for i in wanted}, budget_tokens=10**6, max_images=2)
    blocks = [
        b for m in prompt.messages if isinstance(m["content"], list) for b in m["content"] if b["type"] == "image_url"
    ]
    assert len(blocks) == 2 and prompt.images_dropped == 4
    text = str(prompt.messages)
    assert text.count("no longer shown") == 4


def test_reasoning_is_kept_only_inside_a_live_tool_chain() -> None:
    h = [
        StoredMessage(1, 1, "user", "A", "answered", None, [StoredPart("text", "old q")]),
        StoredMessage(
            2, 2, "assistant", "", "complete", 1, [StoredPart("reasoning", "old thoughts"), StoredPart("text", "old a")]
        ),
        StoredMessage(3, 3, "user", "A", "pending", None, [StoredPart("text", "what time is it?")]),
        StoredMessage(
            4,
            4,
            "assistant",
            "",
            "complete",
            2,
            [
                StoredPart("reasoning", "need the clock"),
                StoredPart(
                    "tool_call", data={"id": "c1", "type": "function", "function": {"name": "now", "arguments": "{}"}}
                ),
            ],
        ),
        StoredMessage(5, 5, "tool", "", "complete", 2, [StoredPart("tool_result", "12:00", data={"id": "c1"})]),
    ]
    messages = build_prompt("S", h, {}, budget_tokens=10**6, max_images=0).messages
    assert messages[2] == {"role": "assistant", "content": "old a"}
    assert messages[4]["content"].startswith("<think>need the clock</think>")
    assert messages[4]["tool_calls"][0]["id"] == "c1"
    assert messages[5] == {"role": "tool", "tool_call_id": "c1", "content": "12:00"}


def test_split_respects_utf16_and_reopens_code_blocks() -> None:
    text = "前言。\n\n```python\n" + "print('😀')\n" * 600 + "```\n\n" + "结尾 😀" * 50
    pieces = split_markdown(text, 4096, utf16_len)
    assert all(utf16_len(p) <= 4096 for p in pieces)
    assert len(pieces) >= 2
    for piece in pieces:
        assert piece.count("```") % 2 == 0  # every piece renders its code as code
