"""Text folding for matching: the forms writers use to slip a word past a filter become one form,
and every folded character remembers which character of the original text it came from.

Two views of a text are made:

* ``light``: each character on its own is NFKC-normalised (full-width Latin and digits, circled
  digits ①, compatibility ideographs, ㎖ → ml), case-folded, and traditional Chinese becomes
  simplified (OpenCC's t2s and hk2s character tables); zero-width and other invisible format
  characters are dropped. Contact details, prices and quantities are read here, where "3.5" and
  "www.a.cn" keep their dots.
* ``tight``: the light view with the filler between characters dropped (spaces, ``*``, ``·``,
  ``.``, ``-``, emoji and other symbols), so "最 佳", "最*佳", "N o . 1" read "最佳", "no1". Clause
  punctuation (。！？，；：、 and line breaks) stays: a word never matches across it. Between two
  Latin letters the filler becomes one space, so English words stay apart. Variant numerals
  (壹 → 一) and "第1" → "第一" are folded too. Rule words are read here.

Both views are made character by character, so a match in either maps back to an exact span of
what the writer wrote (``Folded.span``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

# Clause punctuation (after NFKC: the full-width ！？，；： become ASCII). A word never spans it.
CLAUSE_BREAKS = frozenset("。！？!?，,；;：:、\n\r\u2028\u2029")
# Kept in the tight view although not alphanumeric: "100%" is a claim, "100" is not.
KEPT_SYMBOLS = frozenset("%")
# Formal and variant numerals (大写数字) fold to the plain ones in the tight view.
VARIANT_NUMERALS = str.maketrans("壹贰叁肆伍陆柒捌玖拾", "一二三四五六七八九十")
_VARIANT_CHARS = frozenset("壹贰叁肆伍陆柒捌玖拾")


@functools.cache
def _t2s_table() -> dict[int, str]:
    """Traditional → simplified for single characters, from OpenCC's own dictionaries.

    Converting one long string of every CJK ideograph, one per line, gives a character table in
    a few milliseconds; applying a table keeps the text's length, so offsets stay exact (a phrase
    conversion could change a character's neighbours). Characters OpenCC maps to more or fewer
    than one character are left alone."""
    import opencc

    source = [chr(c) for c in (*range(0x3400, 0x4DC0), *range(0x4E00, 0xA000))]
    joined = "\n".join(source)
    table: dict[int, str] = {}
    for config in ("t2s.json", "hk2s.json"):
        converted = opencc.OpenCC(config).convert(joined).split("\n")
        if len(converted) != len(source):  # a conversion that merged lines: skip this table
            continue
        for before, after in zip(source, converted):
            if before != after and len(after) == 1 and ord(before) not in table:
                table[ord(before)] = after
    return table


def _invisible(ch: str) -> bool:
    """Zero-width spaces and joiners, soft hyphens, variation selectors, bidi marks."""
    return unicodedata.category(ch) == "Cf" or "\ufe00" <= ch <= "\ufe0f" or ch == "\u20e3"


@functools.lru_cache(maxsize=65536)
def fold_char(ch: str) -> str:
    """The light form of one character: "" for an invisible one, else NFKC, case-folded, simplified."""
    if ch.isascii():
        return ch.lower()
    if _invisible(ch):
        return ""
    out = unicodedata.normalize("NFKC", ch).casefold()
    return out.translate(_t2s_table())


# A run of filler in the light view: anything but letters, digits, clause punctuation and "%".
_FILLER = re.compile("(?:_|[^\\w" + re.escape("".join(sorted(CLAUSE_BREAKS | KEPT_SYMBOLS))) + "])+")
_FIRST_ONE = re.compile(r"第1(?!\d)")


@dataclass(frozen=True, slots=True)
class View:
    """A folded text and, for each of its characters, the index of the original character."""

    text: str
    origin: Sequence[int]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span [start, end) that folded characters [start, end) came from."""
        return self.origin[start], self.origin[end - 1] + 1


@dataclass(frozen=True, slots=True)
class Folded:
    original: str
    light: View
    tight: View


class _LightTable(dict[int, str]):
    """``str.translate`` table that fills itself: code point → light form (see fold_char)."""

    def __missing__(self, code: int) -> str:
        out = fold_char(chr(code))
        if len(out) != 1:
            _RESHAPED.add(chr(code))
        self[code] = out
        return out


_LIGHT = _LightTable()
_RESHAPED: set[str] = set()  # characters whose light form is not exactly one character


def fold(text: str) -> Folded:
    """Both views of ``text`` (see the module's docstring)."""
    light_text = text.translate(_LIGHT)  # C speed once every character has been seen
    if _RESHAPED.isdisjoint(text):
        origin: Sequence[int] = range(len(text))  # the usual case: one character each
    else:
        origin = [index for index, ch in enumerate(text) for _ in _LIGHT[ord(ch)]]
    light = View(light_text, origin)
    return Folded(text, light, _tighten(light))


def _tighten(light: View) -> View:
    source = light.text
    if not _VARIANT_CHARS.isdisjoint(source):
        source = source.translate(VARIANT_NUMERALS)
    chars: list[str] = []
    origin: list[int] = []
    position = 0
    for gap in _FILLER.finditer(source):
        start, end = gap.span()
        if start > position:
            chars.append(source[position:start])
            origin.extend(light.origin[position:start])
        # Between two Latin letters the filler becomes one space ("the best" stays two words).
        if (
            0 < start
            and end < len(source)
            and "a" <= source[start - 1] <= "z"
            and "a" <= source[end] <= "z"
            and start > position
        ):
            chars.append(" ")
            origin.append(light.origin[start])
        position = end
    chars.append(source[position:])
    origin.extend(light.origin[position:])
    text = _FIRST_ONE.sub("第一", "".join(chars))  # 第1 → 第一 (第10 stays); same length
    return View(text, origin)


@functools.lru_cache(maxsize=8192)
def fold_word(word: str) -> str:
    """A rule word, exception or never-use word in the tight form it is matched in."""
    return fold(word).tight.text


def _joined(a: str, b: str) -> bool:
    return ("a" <= a <= "z" and "a" <= b <= "z") or (a.isdigit() and b.isdigit())


def word_edges_ok(text: str, start: int, end: int) -> bool:
    """A word matched at [start, end) of a folded text is a word there, not the inside of a longer
    Latin word or number ("vx" not in "vxlan", "top1" not in "top10")."""
    return not (
        (start > 0 and _joined(text[start - 1], text[start])) or (end < len(text) and _joined(text[end - 1], text[end]))
    )
