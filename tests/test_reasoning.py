"""The reasoning splitter: thinking never leaks into the visible answer, in any shape."""

from __future__ import annotations

import itertools

from bot.gateway.events import ReasoningDelta, TextDelta
from bot.gateway.parser import StreamParser
from bot.gateway.reasoning import ThinkSplitter


def run(pieces: list[str]) -> tuple[str, str, list[str]]:
    """Feed pieces; return (reasoning, text, the text visible after each piece)."""
    splitter = ThinkSplitter()
    reasoning, text, seen = [], [], []
    for piece in pieces:
        think, visible = splitter.feed(piece)
        reasoning.append(think)
        text.append(visible)
        seen.append("".join(text))
    think, visible = splitter.finish()
    reasoning.append(think)
    text.append(visible)
    return "".join(reasoning), "".join(text), seen


def splits(full: str, cuts: int) -> list[list[str]]:
    """Every way to cut ``full`` at ``cuts`` positions."""
    out = []
    for points in itertools.combinations(range(1, len(full)), cuts):
        bounds = (0, *points, len(full))
        out.append([full[a:b] for a, b in zip(bounds, bounds[1:])])
    return out


INLINE = "<think>Let me think: a<b, so </thin is not a tag.</think>\n\nThe answer is 42."
NO_OPEN = "user wants 42; check </th spelling</think>\n\nThe answer is 42."
REASONING = "Let me think: a<b, so </thin is not a tag."


def test_inline_in_one_piece():
    assert run([INLINE])[:2] == (REASONING, "The answer is 42.")


def test_inline_split_anywhere():
    for pieces in splits(INLINE, 1) + splits(INLINE, 2):
        reasoning, text, seen = run(pieces)
        assert (reasoning, text) == (REASONING, "The answer is 42."), pieces
        assert all("think" not in s and "Let me" not in s for s in seen), pieces


def test_inline_one_character_at_a_time():
    assert run(list(INLINE))[:2] == (REASONING, "The answer is 42.")


def test_missing_open_tag_split_anywhere():
    for pieces in splits(NO_OPEN, 1) + splits(NO_OPEN, 2):
        reasoning, text, seen = run(pieces)
        assert (reasoning, text) == ("user wants 42; check </th spelling", "The answer is 42."), pieces
        # Nothing of the reasoning was ever visible while it streamed.
        assert all("user wants" not in s for s in seen), pieces


def test_leading_whitespace_before_open_tag():
    assert run(["\n", "  <th", "ink>hm</think>", "\n\n", "  Hi"])[:2] == ("hm", "Hi")


def test_untagged_content_without_close_is_the_answer_at_the_end():
    reasoning, text, seen = run(["Plain ", "answer ", "with no thinking."])
    assert (reasoning, text) == ("", "Plain answer with no thinking.")
    assert seen[-1] == ""  # held back until the stream ended


def test_cut_while_thinking_shows_nothing():
    reasoning, text, _ = run(["<think>still thinking </th"])
    assert (reasoning, text) == ("still thinking </th", "")


def test_lone_partial_open_tag_at_end_is_text():
    assert run(["<thi"])[:2] == ("", "<thi")


def test_text_after_close_passes_through_tags_and_angles():
    reasoning, text, _ = run(["<think>r</think>", "x < y and <think> is a word"])
    assert (reasoning, text) == ("r", "x < y and <think> is a word")


def test_reasoning_field_makes_held_content_visible():
    splitter = ThinkSplitter()
    assert splitter.feed("\nAnswer so far") == ("", "")
    assert splitter.field_seen() == "Answer so far"
    assert splitter.feed(" and more") == ("", " and more")


def chunk(delta: dict) -> str:
    import json

    return json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})


def parse(datas: list[str]) -> tuple[str, str]:
    parser = StreamParser()
    events = parser.feed(datas) + parser.finish()
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    return reasoning, text


def test_reasoning_content_field_then_content():
    datas = [
        chunk({"reasoning_content": "think "}),
        chunk({"reasoning_content": "more"}),
        chunk({"content": "\n\nHello"}),
        chunk({"content": " there"}),
    ]
    assert parse(datas) == ("think more", "Hello there")


def test_reasoning_details_field():
    datas = [
        chunk({"reasoning_details": [{"type": "reasoning.text", "text": "a"}, {"text": "b"}]}),
        chunk({"content": "Visible"}),
    ]
    assert parse(datas) == ("ab", "Visible")


def test_events_of_one_read_are_merged_in_order():
    parser = StreamParser()
    events = parser.feed(
        [
            chunk({"content": "<think>r1"}),
            chunk({"content": "r2</think>A"}),
            chunk({"content": "B"}),
            chunk({"content": "C"}),
        ]
    )
    assert events == [ReasoningDelta("r1r2"), TextDelta("ABC")]


def test_after_a_field_signal_untagged_content_streams_but_think_blocks_stay_hidden():
    splitter = ThinkSplitter()
    assert splitter.field_seen() == ""
    assert splitter.feed("Hello") == ("", "Hello")
    other = ThinkSplitter()
    other.field_seen()
    assert other.feed("<think>hidden</think>shown") == ("hidden", "shown")


def test_empty_reasoning_field_is_a_signal():
    datas = [chunk({"content": "Stream", "reasoning_content": ""}), chunk({"content": "ed"})]
    parser = StreamParser()
    assert parser.feed(datas[:1]) == [TextDelta("Stream")]
    assert parser.feed(datas[1:]) == [TextDelta("ed")]
