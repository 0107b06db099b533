"""Text from extractors made right again, without touching what the author meant.

PDF printers map glyphs back to Unicode through the font, and a CJK font draws 一 and the
Kangxi radical ⼀ with one glyph: Chromium's PDFs of pages set in Noto Sans CJK come out of
extractors as "⼀只好杯⼦能陪你⾛过" (U+2F00–U+2FDF, CJK Radicals Supplement, compatibility
ideographs) where the page says "一只好杯子能陪你走过". Such text costs tokens and defeats
search and quoting.

Plain NFKC would fix those and also change what the author wrote: full-width punctuation
，。！？：；（）becomes ASCII, ①→1, ™→TM, ²→2, ½→1⁄2, ㎡→m2, ℃→°C, the ideographic space
becomes a space, half-width katakana full-width. So NFKC is applied to these blocks only:

- Kangxi Radicals (U+2F00–U+2FD5): NFKC gives the unified ideograph;
- CJK Radicals Supplement (U+2E80–U+2EFF): NFKC maps only two of them, so the rest come
  from Unicode's EquivalentUnifiedIdeograph.txt (UCD 14.0; data © Unicode, Inc., Unicode
  License): the 114 radicals with a visually equivalent unified ideograph;
- CJK Compatibility Ideographs (U+F900–U+FAFF, U+2F800–U+2FA1F): their canonical ideograph;
- full-width ASCII letters and digits (U+FF10–FF19, FF21–FF3A, FF41–FF5A): ASCII.

Besides: CRLF/CR become LF, and characters no reader wants (NUL and other C0 controls but
tab and newline, U+FFFE/U+FFFF, a BOM inside text) are dropped.
"""

from __future__ import annotations

import unicodedata

# Unicode EquivalentUnifiedIdeograph.txt, U+2E81..U+2EF3 (U+2E80 and U+2E9A have none).
RADICALS_SUPPLEMENT: dict[int, int] = {
    0x2E81: 0x5382,
    0x2E82: 0x4E5B,
    0x2E83: 0x4E5A,
    0x2E84: 0x4E59,
    0x2E85: 0x4EBB,
    0x2E86: 0x5182,
    0x2E87: 0x20628,
    0x2E88: 0x5200,
    0x2E89: 0x5202,
    0x2E8A: 0x535C,
    0x2E8B: 0x353E,
    0x2E8C: 0x5C0F,
    0x2E8D: 0x5C0F,
    0x2E8E: 0x5140,
    0x2E8F: 0x5C23,
    0x2E90: 0x5C22,
    0x2E91: 0x21BC2,
    0x2E92: 0x5DF3,
    0x2E93: 0x5E7A,
    0x2E94: 0x5F51,
    0x2E95: 0x5F50,
    0x2E96: 0x5FC4,
    0x2E97: 0x5FC3,
    0x2E98: 0x624C,
    0x2E99: 0x6535,
    0x2E9B: 0x65E1,
    0x2E9C: 0x65E5,
    0x2E9D: 0x6708,
    0x2E9E: 0x6B7A,
    0x2E9F: 0x6BCD,
    0x2EA0: 0x6C11,
    0x2EA1: 0x6C35,
    0x2EA2: 0x6C3A,
    0x2EA3: 0x706C,
    0x2EA4: 0x722B,
    0x2EA5: 0x722B,
    0x2EA6: 0x4E2C,
    0x2EA7: 0x725B,
    0x2EA8: 0x72AD,
    0x2EA9: 0x738B,
    0x2EAA: 0x24D14,
    0x2EAB: 0x76EE,
    0x2EAC: 0x793A,
    0x2EAD: 0x793B,
    0x2EAE: 0x25AD7,
    0x2EAF: 0x7CF9,
    0x2EB0: 0x7E9F,
    0x2EB1: 0x7F53,
    0x2EB2: 0x7F52,
    0x2EB3: 0x34C1,
    0x2EB4: 0x5197,
    0x2EB5: 0x2626B,
    0x2EB6: 0x7F8A,
    0x2EB7: 0x2634C,
    0x2EB8: 0x2634B,
    0x2EB9: 0x8002,
    0x2EBA: 0x8080,
    0x2EBB: 0x807F,
    0x2EBC: 0x8089,
    0x2EBD: 0x26951,
    0x2EBE: 0x8279,
    0x2EBF: 0x8279,
    0x2EC0: 0x8279,
    0x2EC1: 0x864E,
    0x2EC2: 0x8864,
    0x2EC3: 0x8980,
    0x2EC4: 0x897F,
    0x2EC5: 0x89C1,
    0x2EC6: 0x89D2,
    0x2EC7: 0x278B2,
    0x2EC8: 0x8BA0,
    0x2EC9: 0x8D1D,
    0x2ECA: 0x27FB7,
    0x2ECB: 0x8F66,
    0x2ECC: 0x8FB6,
    0x2ECD: 0x8FB6,
    0x2ECE: 0x8FB6,
    0x2ECF: 0x9091,
    0x2ED0: 0x9485,
    0x2ED1: 0x9577,
    0x2ED2: 0x9578,
    0x2ED3: 0x957F,
    0x2ED4: 0x95E8,
    0x2ED5: 0x28E0F,
    0x2ED6: 0x961D,
    0x2ED7: 0x96E8,
    0x2ED8: 0x9752,
    0x2ED9: 0x97E6,
    0x2EDA: 0x9875,
    0x2EDB: 0x98CE,
    0x2EDC: 0x98DE,
    0x2EDD: 0x98DF,
    0x2EDE: 0x2967F,
    0x2EDF: 0x98E0,
    0x2EE0: 0x9963,
    0x2EE1: 0x29810,
    0x2EE2: 0x9A6C,
    0x2EE3: 0x9AA8,
    0x2EE4: 0x9B3C,
    0x2EE5: 0x9C7C,
    0x2EE6: 0x9E1F,
    0x2EE7: 0x5364,
    0x2EE8: 0x9EA6,
    0x2EE9: 0x9EC4,
    0x2EEA: 0x9EFE,
    0x2EEB: 0x6589,
    0x2EEC: 0x9F50,
    0x2EED: 0x6B6F,
    0x2EEE: 0x9F7F,
    0x2EEF: 0x7ADC,
    0x2EF0: 0x9F99,
    0x2EF1: 0x9F9C,
    0x2EF2: 0x4E80,
    0x2EF3: 0x9F9F,
}

KANGXI = range(0x2F00, 0x2FE0)
COMPAT_IDEOGRAPHS = (range(0xF900, 0xFB00), range(0x2F800, 0x2FA20))
FULLWIDTH_ALNUM = (range(0xFF10, 0xFF1A), range(0xFF21, 0xFF3B), range(0xFF41, 0xFF5B))


def _is_unified(char: str) -> bool:
    return len(char) == 1 and unicodedata.name(char, "").startswith("CJK UNIFIED IDEOGRAPH")


def _table() -> dict[int, int | None]:
    table: dict[int, int | None] = {}
    for cp in (*KANGXI, *COMPAT_IDEOGRAPHS[0], *COMPAT_IDEOGRAPHS[1]):
        target = unicodedata.normalize("NFKC", chr(cp))
        if target != chr(cp) and _is_unified(target):
            table[cp] = ord(target)
    table.update(RADICALS_SUPPLEMENT)
    for block in FULLWIDTH_ALNUM:
        for cp in block:
            table[cp] = cp - 0xFEE0
    for cp in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, 0xFEFF, 0xFFFE, 0xFFFF):
        table[cp] = None
    return table


TABLE = _table()


def normalise(text: str) -> str:
    """``text`` with compatibility forms of ideographs and full-width letters/digits made
    ordinary, line ends as LF; everything else exactly as it was."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.translate(TABLE)


def compatibility_forms(text: str) -> int:
    """How many characters ``normalise`` would change (a figure for logs and tests)."""
    return sum(1 for char in text if ord(char) in TABLE and TABLE[ord(char)] is not None)
