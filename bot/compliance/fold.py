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
import unicodedata
from dataclasses import dataclass

# Clause punctuation (after NFKC: the full-width ！？，；： become ASCII). A word never spans it.
CLAUSE_BREAKS = frozenset("。！？!?，,；;：:、\n\r\u2028\u2029")
# Kept in the tight view although not alphanumeric: "100%" is a claim, "100" is not.
KEPT_SYMBOLS = frozenset("%")
# Formal and variant numerals (大写数字) fold to the plain ones in the tight view.
VARIANT_NUMERALS = str.maketrans("壹贰叁肆伍陆柒捌玖拾", "一二三四五六七八九十")


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


def _is_latin(ch: str) -> bool:
    return "a" <= ch <= "z"


def _is_kept(ch: str) -> bool:
    """Characters the tight view keeps: letters, digits, CJK, clause punctuation, "%"."""
    return ch.isalnum() or ch in CLAUSE_BREAKS or ch in KEPT_SYMBOLS


@dataclass(frozen=True, slots=True)
class View:
    """A folded text and, for each of its characters, the index of the original character."""

    text: str
    origin: tuple[int, ...]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span [start, end) that folded characters [start, end) came from."""
        return self.origin[start], self.origin[end - 1] + 1


@dataclass(frozen=True, slots=True)
class Folded:
    original: str
    light: View
    tight: View


def fold(text: str) -> Folded:
    """Both views of ``text`` (see the module's docstring)."""
    light_chars: list[str] = []
    light_origin: list[int] = []
    for index, ch in enumerate(text):
        for out in fold_char(ch):
            light_chars.append(out)
            light_origin.append(index)
    light = View("".join(light_chars), tuple(light_origin))
    return Folded(text, light, _tighten(light))


def _tighten(light: View) -> View:
    chars: list[str] = []
    origin: list[int] = []
    pending_gap = False  # filler seen since the last kept character
    source = light.text.translate(VARIANT_NUMERALS)
    for index, ch in enumerate(source):
        if not _is_kept(ch):
            pending_gap = bool(chars)
            continue
        if pending_gap and _is_latin(ch) and _is_latin(chars[-1]):
            chars.append(" ")  # "the best" stays two words; its space maps to the filler's start
            origin.append(light.origin[index - 1])
        pending_gap = False
        if ch == "1" and chars and chars[-1] == "第" and not _digit_at(source, index + 1):
            ch = "一"  # 第1 → 第一 (but 第10 stays)
        chars.append(ch)
        origin.append(light.origin[index])
    return View("".join(chars), tuple(origin))


def _digit_at(text: str, index: int) -> bool:
    """Is the next kept character of ``text`` from ``index`` on a digit?"""
    for ch in text[index:]:
        if _is_kept(ch):
            return ch.isdigit()
    return False


def fold_word(word: str) -> str:
    """A rule word, exception or never-use word in the tight form it is matched in."""
    return fold(word).tight.text


def _joined(a: str, b: str) -> bool:
    return ("a" <= a <= "z" and "a" <= b <= "z") or (a.isdigit() and b.isdigit())


def word_edges_ok(text: str, start: int, end: int) -> bool:
    """A word matched at [start, end) of a folded text is a word there, not the inside of a longer
    Latin word or number ("vx" not in "vxlan", "top1" not in "top10")."""
    return not ((start > 0 and _joined(text[start - 1], text[start]))
                or (end < len(text) and _joined(text[end - 1], text[end])))
