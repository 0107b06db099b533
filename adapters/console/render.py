"""Markdown for a terminal: rich renders it (headings, emphasis, code blocks, tables) to
ANSI text, and markdown-it finds where a growing answer's finished blocks end, so those
can go to the scrollback while the last block is still being written."""

from __future__ import annotations

import io
import re
from functools import lru_cache

from markdown_it import MarkdownIt
from rich.console import Console
from rich.markdown import Markdown
from rich.text import Text

_TRAILING_SPACES = re.compile(r"[ \t]+(?=\n|$)")


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    """Markdown as the chats read it: a single newline breaks the line (as on Telegram and
    Slack: command lists, addresses, verse), and "<brief>" is text, not HTML to drop."""
    return MarkdownIt("commonmark", {"html": False}).enable("table").enable("strikethrough")


class _ChatMarkdown(Markdown):
    """rich's Markdown, parsed by ``_parser`` (rich builds its own, with HTML on and soft
    line breaks; the rest of its rendering is unchanged)."""

    def __init__(self, text: str) -> None:
        super().__init__("", code_theme="monokai", hyperlinks=False)
        self.markup = text
        self.parsed = _parser().parse(text)
        for token in self.parsed:
            for child in token.children or ():
                if child.type == "softbreak":
                    child.type = "hardbreak"


def settled_length(text: str) -> int:
    """How much of ``text`` (a Markdown answer still growing) is finished blocks: every
    top-level block but the last, whose end may still change (an open code fence, a
    paragraph, a list or a table that may go on). 0 while there is only one block."""
    lines = text.splitlines(keepends=True)
    starts = [t.map[0] for t in _parser().parse(text) if t.level == 0 and t.nesting >= 0 and t.map]
    if len(starts) < 2:
        return 0
    return sum(len(line) for line in lines[: starts[-1]])


def render_markdown(text: str, width: int, *, color: bool = True) -> str:
    """``text`` rendered for a terminal ``width`` columns wide: ANSI-coloured lines, no
    blank lines around them, no trailing spaces."""
    return _render(_ChatMarkdown(text), width, color)


def render_plain(text: str, width: int, style: str = "", *, color: bool = True) -> str:
    """Text that is not Markdown (what the user typed), wrapped and styled."""
    return _render(Text(text, style=style), width, color)


def _render(renderable: Markdown | Text, width: int, color: bool) -> str:
    out = io.StringIO()
    console = Console(
        file=out,
        width=max(20, width),
        force_terminal=color,
        no_color=not color,
        color_system="256" if color else None,
        emoji=False,
        highlight=False,
        legacy_windows=False,
    )
    console.print(renderable)
    return _TRAILING_SPACES.sub("", out.getvalue()).strip("\n")


def with_gutter(rendered: str, label: str, width: int) -> str:
    """``rendered`` (ANSI lines) behind a gutter: ``label`` (already styled, ``width``
    columns) on the first line, blanks on the others."""
    blank = " " * width
    lines = rendered.split("\n") or [""]
    return "\n".join((label if i == 0 else blank) + line if line else line for i, line in enumerate(lines))
