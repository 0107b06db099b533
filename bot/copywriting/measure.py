"""Counting text the way a reader (and a platform's counter) sees it.

Decision: a "character" is a user-perceived character, close to a Unicode grapheme
cluster. A CJK ideograph, a Latin letter, a full-width punctuation mark and a whole emoji
(with skin tone, variation selector, ZWJ family sequence, flag pair or keycap) each count
as one. Combining marks join the character before them, CRLF counts once. This is what
Xiaohongshu's and most editors' counters show and what users mean by "20 字". Python's
``len`` would count a family emoji as 7 and Twitter's weighted count is a platform rule
(``weighted_length``), not a character count.
"""

from __future__ import annotations

import re
import unicodedata

ZWJ = "\u200d"
_KEYCAP = "\u20e3"


def _extends(ch: str) -> bool:
    """True if ``ch`` belongs to the cluster before it rather than starting a new one."""
    cp = ord(ch)
    if 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF:  # variation selectors
        return True
    if 0x1F3FB <= cp <= 0x1F3FF:  # emoji skin-tone modifiers
        return True
    if 0xE0020 <= cp <= 0xE007F:  # emoji tag sequences (subdivision flags)
        return True
    if ch == ZWJ or ch == _KEYCAP:
        return True
    return unicodedata.category(ch) in ("Mn", "Me", "Mc")


def _is_regional_indicator(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def graphemes(text: str) -> list[str]:
    """Split ``text`` into user-perceived characters (see the module docstring)."""
    clusters: list[str] = []
    after_zwj = False
    ri_open = False  # the last cluster is a single regional indicator waiting for its pair
    for ch in text:
        if clusters and (
            after_zwj
            or _extends(ch)
            or (ch == "\n" and clusters[-1] == "\r")
            or (ri_open and _is_regional_indicator(ch))
        ):
            joins_flag = ri_open and _is_regional_indicator(ch)
            clusters[-1] += ch
            ri_open = False if joins_flag else ri_open
        else:
            clusters.append(ch)
            ri_open = _is_regional_indicator(ch)
        after_zwj = ch == ZWJ
    return clusters


def char_count(text: str) -> int:
    """User-perceived characters in ``text``."""
    if text.isascii():
        return len(text) - text.count("\r\n")
    return len(graphemes(text))


def truncate_chars(text: str, limit: int) -> str:
    """At most ``limit`` user-perceived characters, never cutting an emoji in half."""
    return "".join(graphemes(text)[:limit])


def is_cjk(ch: str) -> bool:
    cp = ord(ch[0])
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2FA1F
        or 0xF900 <= cp <= 0xFAFF
        or 0x3040 <= cp <= 0x30FF
        or 0xAC00 <= cp <= 0xD7AF
    )


def is_emoji(cluster: str) -> bool:
    """An emoji cluster (pictographs, flags, keycaps), not a plain symbol like © alone."""
    cp = ord(cluster[0])
    if _KEYCAP in cluster or "\ufe0f" in cluster:
        return True
    return (
        0x1F000 <= cp <= 0x1FAFF
        or 0x2600 <= cp <= 0x27BF
        or 0x2B00 <= cp <= 0x2BFF
        or 0x2300 <= cp <= 0x23FF
        or cp in (0x3030, 0x303D, 0x3297, 0x3299)
    )


def emoji_count(text: str) -> int:
    return sum(1 for g in graphemes(text) if is_emoji(g))


_WORD = re.compile(r"[A-Za-z0-9]+(?:['’\-][A-Za-z0-9]+)*")
# A hashtag: '#' not glued to a word or URL before it, a tag of non-space characters,
# optionally closed by '#' (Weibo writes #话题#). Trailing punctuation is not part of it.
_HASHTAG = re.compile(r"(?<![\w/&#])#([^\s#]+)#?")
_TRAILING_PUNCT = ".,!?;:。，！？；：、…)）】」』\"'”’"


def find_hashtags(text: str) -> list[str]:
    """Hashtags in ``text`` without their '#' marks, in order, duplicates removed."""
    seen: dict[str, None] = {}
    for match in _HASHTAG.finditer(text):
        tag = match.group(1).rstrip(_TRAILING_PUNCT)
        if tag and not tag.isdigit():
            seen.setdefault(tag, None)
    return list(seen)


def normalize_hashtag(tag: str) -> str:
    """'#好物#', '#launch', ' tag ' -> '好物', 'launch', 'tag'."""
    return tag.strip().strip("#＃").strip()


def word_count(text: str) -> int:
    """Latin words plus CJK characters (each CJK character is a word for counting purposes)."""
    return len(_WORD.findall(text)) + sum(1 for ch in text if is_cjk(ch))


_URL = re.compile(r"https?://\S+")
TWITTER_URL_WEIGHT = 23


def weighted_length(text: str) -> int:
    """X/Twitter's weighted length: CJK and emoji count 2, a URL 23, everything else 1."""
    total = TWITTER_URL_WEIGHT * len(_URL.findall(text))
    rest = _URL.sub("", text)
    for g in graphemes(rest):
        cp = ord(g[0])
        wide = (
            is_emoji(g)
            or cp > 0x10FF
            and not (0x2000 <= cp <= 0x200D or 0x2010 <= cp <= 0x201F or 0x2032 <= cp <= 0x2037)
        )
        total += 2 if wide else 1
    return total
