"""A brand profile as the model, a chat and an editor see it: size limits, the stable prompt
section, the Markdown ``/brand`` shows, and one-field edits (``/brand edit FIELD: value``).

Edits go through ``BrandProfile.to_dict`` / ``from_dict``, so an edited profile is checked by
the same code as a drafted or stored one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.compliance.brand import BrandError, BrandProfile, Money


@dataclass(frozen=True, slots=True)
class Limits:
    """What one profile may hold: it goes into every prompt of its chat."""

    name: int = 64  # characters
    text: int = 300  # audience, tone
    products: int = 20
    points: int = 10  # selling points per product
    point: int = 120  # characters per selling point
    specs: int = 12  # per product
    words: int = 60  # per word list
    word: int = 30  # characters per word


LIMITS = Limits()


def problems(profile: BrandProfile, limits: Limits = LIMITS) -> list[str]:
    """What makes ``profile`` too big to keep, each naming the field."""
    found = []

    def longer(what: str, text: str, most: int) -> None:
        if len(text) > most:
            found.append(f"{what} is {len(text)} characters; at most {most}")

    def more(what: str, items: Sequence[Any], most: int) -> None:
        if len(items) > most:
            found.append(f"{what}: {len(items)} entries; at most {most}")

    longer("name", profile.name, limits.name)
    longer("audience", profile.audience, limits.text)
    longer("tone", profile.tone, limits.text)
    for field, words in (("words_to_use", profile.words_to_use), ("words_never", profile.words_never)):
        more(field, words, limits.words)
        for word in words:
            longer(f"{field} “{word[:20]}”", word, limits.word)
    more("products", profile.products, limits.products)
    for product in profile.products:
        longer("product name", product.name, limits.name)
        more(f"{product.name}: selling points", product.selling_points, limits.points)
        more(f"{product.name}: specifications", product.specs, limits.specs)
        for point in product.selling_points:
            longer(f"{product.name}: a selling point", point, limits.point)
    return found


def _cjk_share(text: str) -> float:
    letters = [ch for ch in text if ch.isalpha()]
    return sum("\u4e00" <= ch <= "\u9fff" for ch in letters) / len(letters) if letters else 0.0


def language_of(profile: BrandProfile) -> str:
    """ "zh" when the profile is mostly written in Chinese (for its labels)."""
    text = " ".join(
        [
            profile.name,
            profile.audience,
            profile.tone,
            *(p.name for p in profile.products),
            *(s for p in profile.products for s in p.selling_points),
        ]
    )
    return "zh" if _cjk_share(text) >= 0.3 else "en"


# --- the prompt ---------------------------------------------------------------------------------


def prompt_section(profile: BrandProfile) -> str:
    """The profile for the stable system prompt: the same profile, the same bytes."""
    lines = [
        "Brand profile of this chat (set by its members). Write every piece of copy for this brand: "
        "names, prices and specifications exactly as given here, its tone, and never a word it never uses.",
        f"Brand: {profile.name}",
    ]
    if profile.audience:
        lines.append(f"Audience: {profile.audience}")
    if profile.tone:
        lines.append(f"Tone: {profile.tone}")
    if profile.words_to_use:
        lines.append("Words it likes to use: " + "、".join(profile.words_to_use))
    if profile.words_never:
        lines.append("Words it never uses: " + "、".join(profile.words_never))
    if profile.products:
        lines.append("Products:")
    for product in profile.products:
        facts = [f"price {product.price}"] if product.price else []
        facts += [str(spec) for spec in product.specs]
        also = f" (also called {'、'.join(product.aliases)})" if product.aliases else ""
        lines.append(f"- {product.name}{also}" + (f": {'; '.join(facts)}" if facts else ""))
        if product.selling_points:
            lines.append("  Selling points: " + "; ".join(product.selling_points))
    return "\n".join(lines)


# --- what /brand shows --------------------------------------------------------------------------

_LABELS = {  # field → (Chinese, English)
    "audience": ("受众", "Audience"),
    "tone": ("调性", "Tone"),
    "use": ("常用词", "Words to use"),
    "never": ("禁用词", "Never use"),
    "products": ("产品", "Products"),
    "aliases": ("别名", "also"),
    "points": ("卖点", "Selling points"),
    "none": ("（未填写）", "(not set)"),
}


def _label(key: str, zh: bool) -> str:
    return _LABELS[key][0 if zh else 1]


def markdown(profile: BrandProfile, *, title: str = "") -> str:
    """The profile as ``/brand`` shows it (a draft too): every field, products numbered."""
    zh = language_of(profile) == "zh"
    sep = "：" if zh else ": "
    none = _label("none", zh)
    lines = [f"**{title or ('品牌资料' if zh else 'Brand profile')} · {profile.name}**", ""]
    lines.append(f"- {_label('audience', zh)}{sep}{profile.audience or none}")
    lines.append(f"- {_label('tone', zh)}{sep}{profile.tone or none}")
    lines.append(f"- {_label('use', zh)}{sep}{'、'.join(profile.words_to_use) or none}")
    lines.append(f"- {_label('never', zh)}{sep}{'、'.join(profile.words_never) or none}")
    lines.append(f"- {_label('products', zh)}{sep}{'' if profile.products else none}")
    for number, product in enumerate(profile.products, 1):
        facts = [str(product.price)] if product.price else []
        facts += [str(spec) for spec in product.specs]
        also = (
            f"（{_label('aliases', zh)}：{'、'.join(product.aliases)}）"
            if zh and product.aliases
            else (f" ({_label('aliases', zh)}: {', '.join(product.aliases)})" if product.aliases else "")
        )
        lines.append(f"  {number}. **{product.name}**{also}" + "".join(f" · {fact}" for fact in facts))
        if product.selling_points:
            lines.append(f"     {_label('points', zh)}{sep}{'；'.join(product.selling_points)}")
    return "\n".join(lines)


# --- /brand edit FIELD: value -------------------------------------------------------------------

FIELDS: dict[str, tuple[str, ...]] = {  # a field and the names it may be given
    "name": ("name", "brand", "品牌", "品牌名", "名称", "名字"),
    "audience": ("audience", "受众", "人群", "目标人群", "目标用户"),
    "tone": ("tone", "voice", "调性", "语气", "风格"),
    "words_to_use": ("use", "words_to_use", "words", "常用词", "推荐词", "用词"),
    "words_never": ("never", "words_never", "banned", "禁用词", "禁词", "不用词", "违禁词"),
    "product": ("product", "products", "产品", "商品"),
}
PRODUCT_FIELDS: dict[str, tuple[str, ...]] = {
    "name": ("name", "名称", "名字"),
    "price": ("price", "价格", "售价"),
    "selling_points": ("points", "selling_points", "卖点"),
    "aliases": ("aliases", "alias", "别名"),
}
EDIT_USAGE = (
    "Usage: `/brand edit FIELD: value` — FIELD is name, audience, tone, use, never (add `+` or `-` "
    "to add or remove words: `never+: 平替`), `product+: NAME` / `product-: NAME`, or a product's own "
    "field: `NAME.price: 129元`, `NAME.points: 温和；好吸收`, `NAME.aliases: 精华液`, `NAME.容量: 30ml` "
    "(any other name is a specification; an empty value removes it)."
)
_SPLIT = re.compile(r"\s*[、,，;；\n]\s*")


def _find(names: dict[str, tuple[str, ...]], given: str) -> str | None:
    wanted = given.strip().lower()
    return next((field for field, aliases in names.items() if wanted in aliases), None)


def _words(value: str) -> list[str]:
    return [w for w in _SPLIT.split(value.strip()) if w]


def _product_index(data: dict[str, Any], name: str) -> int:
    wanted = name.strip().lower()
    for i, raw in enumerate(data["products"]):
        if wanted in (n.lower() for n in (raw["name"], *raw.get("aliases", []))):
            return i
    known = "、".join(p["name"] for p in data["products"]) or "none yet"
    raise BrandError(f"there is no product called “{name.strip()}” (products: {known})")


def apply_edit(profile: BrandProfile, args: str) -> BrandProfile:
    """``profile`` with one field changed as ``args`` (``FIELD: value``) says; ``BrandError``
    with the reason (and the usage) otherwise."""
    match = re.match(r"\s*(?P<field>[^:：\n]+?)\s*(?P<op>[+-]?)\s*[:：]\s*(?P<value>.*)\Z", args, re.DOTALL)
    if not match:
        raise BrandError(EDIT_USAGE)
    given, op, value = match["field"], match["op"], match["value"].strip()
    data = profile.to_dict()
    field = _find(FIELDS, given)
    if field is None and "." in given:
        product, _, sub = given.rpartition(".")
        _edit_product(data, product, sub, value)
    elif field in ("name", "audience", "tone"):
        if op:
            raise BrandError(f"{given} is a text: set it with `{given}: …`")
        data[field] = value
    elif field in ("words_to_use", "words_never"):
        words = _words(value)
        if op == "+":
            data[field] = list(dict.fromkeys([*data[field], *words]))
        elif op == "-":
            drop = {w.lower() for w in words}
            data[field] = [w for w in data[field] if w.lower() not in drop]
        else:
            data[field] = words
    elif field == "product":
        if op == "-":
            del data["products"][_product_index(data, value)]
        elif op == "+" or not op:
            if not value:
                raise BrandError("name the product: `product+: 山茶花精华`")
            if any(value.lower() == p["name"].lower() for p in data["products"]):
                raise BrandError(f"there is already a product called “{value}”")
            data["products"].append({"name": value})
    else:
        raise BrandError(f"unknown field “{given.strip()}”. {EDIT_USAGE}")
    edited = BrandProfile.from_dict(data)
    if found := problems(edited):
        raise BrandError("; ".join(found))
    return edited


def _edit_product(data: dict[str, Any], name: str, sub: str, value: str) -> None:
    product = data["products"][_product_index(data, name)]
    field = _find(PRODUCT_FIELDS, sub)
    if field == "name":
        if not value:
            raise BrandError("a product needs a name")
        product["name"] = value
    elif field == "price":
        money = Money.parse(value, f"{name}.price") if value else None
        product["price"] = {"amount": str(money.amount), "currency": money.currency} if money else None
    elif field in ("selling_points", "aliases"):
        product[field] = _words(value)
    else:  # a specification: 容量, 重量, 尺寸…
        spec = sub.strip()
        if not spec:
            raise BrandError(EDIT_USAGE)
        specs = dict(product.get("specs") or {})
        if value:
            specs[spec] = value
        else:
            specs.pop(spec, None)
        product["specs"] = specs
