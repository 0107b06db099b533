"""Brand checks: words the brand never uses, and prices or specifications that contradict the profile.

Conservative by design (a false alarm on a fact teaches writers to ignore the checker):

* a number is a **price** when it carries a currency (¥129, 129元, 129 rmb, 129块钱) or follows a
  price word (到手价、售价、券后价、活动价…); it is skipped when it follows a discount or threshold
  word (满300减50、立减、省了、原价、运费、定金…), a bundle (两瓶只要199), a per-use cost (每天只要3元),
  or is followed by 券/红包/起/折.
* a number with a unit is a **specification** of a product only right after the spec's name
  (容量500ml; synonyms such as 净含量 count when the product has one spec of that kind) or right
  after the product's name (山茶花精华 50ml); it is skipped after 多/少/加量/送/小样/每次….
* the mention is about the product named last before it in the same sentence; with no name in
  the sentence, only a one-product profile and a price word (or spec name) tie it to a product.

A mention that passes all this and differs from the profile is a finding (must-fix).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from bot.compliance.brand import CURRENCIES, BrandProfile, Product, Spec
from bot.compliance.findings import Category, Finding, Severity
from bot.compliance.fold import CLAUSE_BREAKS, Folded, fold_word, word_edges_ok

SOURCE = "brand profile"
_SENTENCE_BREAK = re.compile("[。!?！？\n\r]")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
# Words between a cue and its number: "到手价：只要 99".
_CONNECTIVE = re.compile(r"(?:只要|只需|仅需|仅售|仅|才|低至|一共|共|是|为|约|大约|达|高达|有|足足|足有|[\s:=])+$")
PRICE_CUES = (
    "到手价",
    "到手",
    "售价",
    "券后价",
    "券后",
    "活动价",
    "现价",
    "日常价",
    "零售价",
    "官方价",
    "定价",
    "价格",
    "单价",
    "官方售价",
    "直播价",
    "秒杀价",
    "首发价",
    "会员价",
    "特价",
    "价",
)
NOT_A_PRICE_BEFORE = (
    "满",
    "减",
    "省",
    "省了",
    "送",
    "返",
    "返现",
    "优惠",
    "立减",
    "直降",
    "降",
    "降了",
    "便宜",
    "便宜了",
    "贵",
    "贵了",
    "多",
    "少",
    "补贴",
    "红包",
    "券",
    "运费",
    "邮费",
    "原价",
    "划线价",
    "差价",
    "定金",
    "尾款",
    "押金",
    "加",
    "加价",
    "再减",
    "每天",
    "一天",
    "每日",
    "平均",
    "每次",
    "一次",
    "每片",
    "每颗",
    "每袋",
    "日均",
    "折合",
    "相当于",
    "不到",
    "市场价",
    "专柜价",
    "吊牌价",
    "参考价",
    "张",
    "小样",
    "中样",
    "赠品",
    "试用装",
    "旅行装",
    "配件",
)
_NOT_A_PRICE_AFTER = re.compile(
    r"^\s*(?:(?:无门槛|通用)?(?:券|优惠券|代金券|红包)|起|折|以上|以下|左右|多|内"
    r"|/\s*\d|每\s*\d|[x×*]\s*\d)"
)
_BUNDLE_BEFORE = re.compile(r"[\d一二两三四五六七八九十]+\s*(?:瓶|件|盒|支|套|个|包|袋|罐|箱|份|片|颗)装?$")
_CURRENCY_BEFORE = re.compile(r"(?:¥|￥|\$|€|rmb|cny|usd|eur|hkd)\s*$")
_CURRENCY_AFTER = re.compile(r"^\s*(元|块钱|rmb|cny|usd|eur|hkd|美元|港币)")

UNITS: dict[str, tuple[str, Decimal]] = {  # unit → (dimension, factor to the dimension's base)
    "ml": ("volume", Decimal(1)),
    "毫升": ("volume", Decimal(1)),
    "l": ("volume", Decimal(1000)),
    "升": ("volume", Decimal(1000)),
    "mg": ("mass", Decimal("0.001")),
    "毫克": ("mass", Decimal("0.001")),
    "g": ("mass", Decimal(1)),
    "克": ("mass", Decimal(1)),
    "kg": ("mass", Decimal(1000)),
    "千克": ("mass", Decimal(1000)),
    "公斤": ("mass", Decimal(1000)),
    "斤": ("mass", Decimal(500)),
    "mm": ("length", Decimal(1)),
    "毫米": ("length", Decimal(1)),
    "cm": ("length", Decimal(10)),
    "厘米": ("length", Decimal(10)),
    "m": ("length", Decimal(1000)),
    "米": ("length", Decimal(1000)),
    "mah": ("charge", Decimal(1)),
    "毫安时": ("charge", Decimal(1)),
    "毫安": ("charge", Decimal(1)),
    "w": ("power", Decimal(1)),
    "瓦": ("power", Decimal(1)),
}
_QUANTITY = re.compile(
    r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>"
    + "|".join(sorted(map(re.escape, UNITS), key=len, reverse=True))
    + r")(?![a-z])"
)
SPEC_SYNONYMS = {
    "volume": ("容量", "净含量", "规格", "装"),
    "mass": ("重量", "净重", "净含量", "克重", "重"),
    "length": ("尺寸", "长度"),
    "charge": ("电池容量", "电池", "电量", "容量"),
    "power": ("功率", "额定功率"),
}
NOT_A_SPEC_BEFORE = (
    "多",
    "少",
    "多了",
    "少了",
    "加量",
    "增加",
    "减少",
    "送",
    "赠",
    "赠送",
    "小样",
    "每次",
    "用量",
    "每天",
    "一次",
    "再送",
    "加",
    "共",
)


@dataclass(frozen=True, slots=True)
class _Mention:
    product: Product
    start: int  # original offsets
    end: int


def _measure(unit: str, value: Decimal) -> tuple[str, Decimal] | None:
    known = UNITS.get(unit.lower())
    return (known[0], value * known[1]) if known else None


def _clause_prefix(light: str, index: int, breaks: frozenset[str] = CLAUSE_BREAKS) -> str:
    """The light text from the last clause break before ``index`` up to it."""
    start = index
    while start > 0 and light[start - 1] not in breaks:
        start -= 1
    return light[start:index]


def _ends_with(text: str, words: tuple[str, ...]) -> bool:
    return text.endswith(words)


class _Names:
    """Where each product is named (tight view, mapped to original offsets)."""

    def __init__(self, folded: Folded, brand: BrandProfile) -> None:
        self.mentions: list[_Mention] = []
        tight = folded.tight
        for product in brand.products:
            for name in product.names:
                word = fold_word(name)
                if not word:
                    continue
                at = tight.text.find(word)
                while at >= 0:
                    start, end = tight.span(at, at + len(word))
                    self.mentions.append(_Mention(product, start, end))
                    at = tight.text.find(word, at + len(word))
        self.mentions.sort(key=lambda m: (m.end, m.start))
        self.sentence_starts = [0] + [m.end() for m in _SENTENCE_BREAK.finditer(folded.original)]

    def last_before(self, position: int) -> Product | None:
        """The product named last before ``position`` in the same sentence."""
        sentence_start = self.sentence_starts[bisect.bisect_right(self.sentence_starts, position) - 1]
        best = None
        for mention in self.mentions:
            if mention.end > position:
                break
            if mention.start >= sentence_start:
                best = mention.product
        return best


def _prices(folded: Folded) -> Iterator[tuple[int, int, Decimal, str, bool]]:
    """(light start, light end, amount, currency, has a price word) for each price mention."""
    light = folded.light.text
    for match in _NUMBER.finditer(light):
        start, end = match.span()
        if start and (light[start - 1].isdigit() or light[start - 1] == "."):
            continue
        before = _clause_prefix(light, start)
        after = light[end : end + 8]
        currency = None
        if symbol := _CURRENCY_BEFORE.search(before):
            currency = CURRENCIES.get(symbol.group(0).strip(), symbol.group(0).strip().upper())
            start -= len(before) - symbol.start()  # the finding quotes "¥139", not "139"
            before = before[: symbol.start()]
        elif unit := _CURRENCY_AFTER.match(after):
            currency = CURRENCIES.get(unit.group(1).rstrip("钱"), unit.group(1).upper())
            end += unit.end()
        bare = _CONNECTIVE.sub("", before)
        cue = _ends_with(bare, PRICE_CUES)
        if currency is None and not cue:
            continue
        if (
            _ends_with(bare, NOT_A_PRICE_BEFORE)
            or _BUNDLE_BEFORE.search(bare)
            or _NOT_A_PRICE_AFTER.match(light[end : end + 8])
        ):
            continue
        yield start, end, Decimal(match.group(0)), currency or "CNY", cue


def _specs(folded: Folded) -> Iterator[tuple[int, int, Decimal, str, str]]:
    """(light start, light end, value, unit, clause text before) for each quantity with a unit."""
    light = folded.light.text
    for match in _QUANTITY.finditer(light):
        start = match.start()
        if start and (light[start - 1].isdigit() or light[start - 1] in ".x×*/+-~"):
            continue  # 30×20×10cm, 1.5.0, ranges: not one value
        yield start, match.end(), Decimal(match.group("number")), match.group("unit"), _clause_prefix(light, start)


def brand_findings(folded: Folded, brand: BrandProfile) -> list[Finding]:
    """Never-use words and contradictions of the profile in a folded text."""
    findings = list(_never_words(folded, brand))
    names = _Names(folded, brand)
    only = brand.products[0] if len(brand.products) == 1 else None
    light = folded.light
    for start, end, amount, currency, cue in _prices(folded):
        o_start, o_end = light.span(start, end)
        product = names.last_before(o_start) or (only if cue else None)
        if product is None or product.price is None or product.price.currency != currency:
            continue
        if amount != product.price.amount:
            findings.append(_price_finding(folded.original, o_start, o_end, product, amount))
    for start, end, value, unit, before in _specs(folded):
        o_start, o_end = light.span(start, end)
        named = names.last_before(o_start)
        product = named or only
        if product is None:
            continue
        spec = _spec_named(product, before, unit, right_after_name=named is not None and _after_name(before, product))
        if spec is None:
            continue
        said, meant = _measure(unit, value), _measure(spec.unit, spec.value)
        if said is None or meant is None or said[0] != meant[0] or said[1] == meant[1]:
            continue
        findings.append(_spec_finding(folded.original, o_start, o_end, product, spec))
    return findings


def _after_name(before: str, product: Product) -> bool:
    bare = _CONNECTIVE.sub("", before).rstrip("的")
    return any(bare.endswith(fold_word(name)) for name in product.names if fold_word(name))


def _spec_named(product: Product, before: str, unit: str, *, right_after_name: bool) -> Spec | None:
    """The product's spec this quantity states, if the words before it say which (or it follows the name)."""
    dimension = UNITS[unit.lower()][0]
    same_kind = [s for s in product.specs if (m := _measure(s.unit, s.value)) and m[0] == dimension]
    if not same_kind:
        return None
    bare = _CONNECTIVE.sub("", before).rstrip("的")
    if _ends_with(bare, NOT_A_SPEC_BEFORE):
        return None
    for spec in same_kind:
        if bare.endswith(fold_word(spec.name)):
            return spec
    if len(same_kind) == 1 and (_ends_with(bare, SPEC_SYNONYMS.get(dimension, ())) or right_after_name):
        return same_kind[0]
    return None


def _price_finding(original: str, start: int, end: int, product: Product, amount: Decimal) -> Finding:
    assert product.price is not None
    phrase = original[start:end]
    right = format(product.price.amount.normalize(), "f")
    said = format(amount.normalize(), "f")
    suggestion = phrase.replace(said, right, 1) if said in phrase else str(product.price)
    return Finding(
        phrase,
        start,
        end,
        "brand.price",
        Category.BRAND_FACT,
        Severity.MUST_FIX,
        f"品牌资料中「{product.name}」的价格是 {product.price}，这里写的是 {said}。",
        f"The brand profile prices “{product.name}” at {product.price}; this says {said}.",
        suggestion,
        SOURCE,
    )


def _spec_finding(original: str, start: int, end: int, product: Product, spec: Spec) -> Finding:
    right = f"{format(spec.value.normalize(), 'f')}{spec.unit}"
    phrase = original[start:end]
    return Finding(
        phrase,
        start,
        end,
        f"brand.spec.{spec.name}",
        Category.BRAND_FACT,
        Severity.MUST_FIX,
        f"品牌资料中「{product.name}」的{spec.name}是 {right}，这里写的是 {phrase}。",
        f"The brand profile gives “{product.name}” {spec.name} = {right}; this says {phrase}.",
        right,
        SOURCE,
    )


def _never_words(folded: Folded, brand: BrandProfile) -> Iterator[Finding]:
    tight = folded.tight
    for word in brand.words_never:
        key = fold_word(word)
        if not key:
            continue
        at = tight.text.find(key)
        while at >= 0:
            end = at + len(key)
            if word_edges_ok(tight.text, at, end):
                start, stop = tight.span(at, end)
                yield Finding(
                    folded.original[start:stop],
                    start,
                    stop,
                    "brand.never",
                    Category.BRAND_WORD,
                    Severity.MUST_FIX,
                    f"「{word}」在品牌「{brand.name}」的禁用词表中。",
                    f"“{word}” is on {brand.name}'s list of words never to use.",
                    None,
                    SOURCE,
                )
            at = tight.text.find(key, at + 1)
