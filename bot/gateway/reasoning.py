"""Separate the model's thinking from its visible answer, incrementally.

minimax-m2.7 always thinks. Depending on the gateway, the thinking arrives

* inline in ``content`` as ``<think>…</think>`` (tags possibly split across chunks),
* inline with the opening ``<think>`` missing: reasoning, then ``</think>``, then the answer,
* in a separate field (``reasoning_content`` / ``reasoning_details``): content is the answer.

The rule for content that does not start with ``<think>``: it is *held back* (nothing is
shown) until one of three things decides what it was:

1. ``</think>`` appears: everything before it was reasoning, everything after is the answer;
2. the gateway shows that it splits reasoning out: a ``reasoning_content`` string (even
   empty) or a ``reasoning_details`` list arrives (``field_seen``), so the held content is
   the answer (a ``<think>`` block at the start of content is still hidden);
3. the stream ends without either: there was no reasoning in the content, it is the answer.

So reasoning is never shown as answer text; the price, only on a gateway that drops
reasoning entirely, is that the answer appears at once at the end instead of streaming.
Leading whitespace of the answer (the blank line after ``</think>``) is dropped.
"""

from __future__ import annotations

OPEN = "<think>"
CLOSE = "</think>"
_OPEN_LEN = len(OPEN)
_CLOSE_LEN = len(CLOSE)

# States. Ints compare faster than an Enum on the per-chunk path.
_START = 0  # nothing decisive seen yet (only whitespace, or a partial "<think>")
_THINK = 1  # inside <think>…: content is reasoning until </think>
_UNTAGGED = 2  # content began without <think>: held back until the rule above decides
_TEXT = 3  # the visible answer


def _partial_close(buf: str) -> int:
    """Length of the longest suffix of ``buf`` that could begin a split ``</think>``."""
    j = buf.rfind("<", max(0, len(buf) - _CLOSE_LEN + 1))
    if j < 0:
        return 0
    return len(buf) - j if CLOSE.startswith(buf[j:]) else 0


class ThinkSplitter:
    """Feed content deltas; get back ``(reasoning, text)`` pairs, reasoning first."""

    __slots__ = ("_state", "_buf", "_held", "_strip", "_split_gateway")

    def __init__(self) -> None:
        self._split_gateway = False  # reasoning comes in a field: untagged content is the answer
        self._state = _START
        self._buf = ""  # START: pending prefix; THINK: partial close tag; UNTAGGED: tail
        self._held: list[str] = []  # UNTAGGED: everything held back
        self._strip = True  # drop leading whitespace of the visible answer

    def feed(self, content: str) -> tuple[str, str]:
        state = self._state
        if state == _TEXT:
            return "", self._visible(content)
        if state == _THINK:
            return self._think(content)
        if state == _UNTAGGED:
            return self._untagged(content)
        buf = self._buf + content
        head = buf.lstrip()
        if not head:
            self._buf = buf
            return "", ""
        if head.startswith(OPEN):
            self._state = _THINK
            self._buf = ""
            return self._think(head[_OPEN_LEN:])
        if OPEN.startswith(head):  # "<thi" so far: wait for the rest
            self._buf = buf
            return "", ""
        if self._split_gateway:
            self._state = _TEXT
            self._buf = ""
            return "", self._visible(buf)
        self._state = _UNTAGGED
        self._buf = ""
        return self._untagged(buf)

    def field_seen(self) -> str:
        """The gateway sends reasoning in a field, so content without ``<think>`` is the
        answer: returns what was held back. A ``<think>`` block in content is still hidden."""
        self._split_gateway = True
        if self._state == _UNTAGGED:
            held = "".join(self._held)
            self._state = _TEXT
            self._buf = ""
            self._held = []
            return self._visible(held)
        return ""

    def finish(self) -> tuple[str, str]:
        """The stream ended: settle what is still held."""
        state = self._state
        self._state = _TEXT
        if state == _THINK:  # cut while thinking: it was all reasoning
            rest, self._buf = self._buf, ""
            return rest, ""
        if state == _UNTAGGED:  # never closed: there was no reasoning in the content
            held, self._held = "".join(self._held), []
            self._buf = ""
            return "", self._visible(held)
        if state == _START:  # only whitespace or a lone "<thi"
            rest, self._buf = self._buf, ""
            return "", self._visible(rest)
        return "", ""

    def _visible(self, text: str) -> str:
        if self._strip and text:
            text = text.lstrip()
            if text:
                self._strip = False
        return text

    def _close(self, reasoning: str, rest: str) -> tuple[str, str]:
        self._state = _TEXT
        self._buf = ""
        self._held = []
        return reasoning, self._visible(rest)

    def _think(self, content: str) -> tuple[str, str]:
        buf = self._buf + content if self._buf else content
        i = buf.find(CLOSE)
        if i >= 0:
            return self._close(buf[:i], buf[i + _CLOSE_LEN :])
        keep = _partial_close(buf)
        if keep:
            self._buf = buf[-keep:]
            return buf[:-keep], ""
        self._buf = ""
        return buf, ""

    def _untagged(self, content: str) -> tuple[str, str]:
        # Search only the new content plus a short tail, so holding stays linear.
        tail = self._buf
        joined = tail + content
        i = joined.find(CLOSE)
        if i < 0:
            self._held.append(content)
            self._buf = joined[-(_CLOSE_LEN - 1) :]
            return "", ""
        held = "".join(self._held)
        before = held[: len(held) - len(tail)] + joined[:i]
        return self._close(before, joined[i + _CLOSE_LEN :])
