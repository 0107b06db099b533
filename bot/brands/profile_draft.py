"""``/brand set <free text>``: the model fills a brand profile as JSON, checked here.

As with copy (``bot.copywriting``): ask with ``response_format`` and the same shape in words
(some servers ignore ``response_format``), strip reasoning, extract and repair the JSON, map
field-name synonyms, check in code (``BrandProfile.from_dict`` and the size limits), and retry
once with the problems quoted. A user never sees raw JSON.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.brands.profile import problems
from bot.compliance.brand import BrandError, BrandProfile
from bot.copywriting.structured import extract_json, strip_reasoning

SCHEMA_NAME = "brand_profile"

SYSTEM = (
    "You turn what a marketing team says about their brand into a brand profile that copywriters and a "
    "compliance checker will rely on. Record only what the text states; never invent products, prices, "
    "specifications or claims."
)


def profile_schema() -> dict[str, Any]:
    text = {"type": "string"}
    texts = {"type": "array", "items": text}
    spec = {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "value"],
        "properties": {"name": text, "value": text},
    }
    product = {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "aliases", "selling_points", "price", "specs"],
        "properties": {
            "name": text,
            "aliases": texts,
            "selling_points": texts,
            "price": text,
            "specs": {"type": "array", "items": spec},
        },
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "audience", "tone", "words_to_use", "words_never", "products"],
        "properties": {
            "name": text,
            "audience": text,
            "tone": text,
            "words_to_use": texts,
            "words_never": texts,
            "products": {"type": "array", "items": product},
        },
    }


def response_format() -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "schema": profile_schema()}}


INSTRUCTION = (
    "Fill a brand profile from the text above. Write each field in the language of the text. Leave a field "
    'empty ("" or []) when the text does not say it. name: the brand\'s name. audience: who it sells to. '
    "tone: how its copy should sound. words_to_use: words or phrases it likes to use. words_never: words it "
    "never uses (banned words, rivals' names, words it dislikes). products: each product it names, with "
    "aliases (other names for it), selling_points (short phrases), price (as written with its currency, "
    'e.g. 129元 or ¥129; "" if none is given) and specs (each {"name": "容量", "value": "30ml"}: a '
    "number with its unit).\n\n"
    "Reply with only one JSON object, no prose and no code fences: "
    '{"name": "…", "audience": "…", "tone": "…", "words_to_use": ["…"], "words_never": ["…"], '
    '"products": [{"name": "…", "aliases": ["…"], "selling_points": ["…"], "price": "129元", '
    '"specs": [{"name": "容量", "value": "30ml"}]}]}'
)


def retry_instruction(found: Sequence[str]) -> str:
    return (
        "That profile could not be used: " + "; ".join(found) + ". Write the whole profile again, fixing "
        "those fields, and reply with only the JSON object."
    )


@dataclass(slots=True)
class Drafted:
    profile: BrandProfile | None
    problems: list[str] = field(default_factory=list)  # worded for the retry prompt

    @property
    def ok(self) -> bool:
        return self.profile is not None

    def reason(self, zh: bool) -> str:
        """For the user when the retry failed too."""
        listed = "; ".join(self.problems[:4])
        return (
            f"没能从这段话整理出品牌资料（{listed}）。请补充品牌名、产品和价格等信息后再试。"
            if zh
            else f"I couldn't make a brand profile of that ({listed}). Add the brand's name, its products and "
            "prices, and try again."
        )


_SYNONYMS = {
    "name": ("name", "brand", "brand_name", "品牌", "品牌名", "名称"),
    "audience": ("audience", "target_audience", "target", "受众", "人群", "目标人群"),
    "tone": ("tone", "voice", "tone_of_voice", "调性", "语气", "风格"),
    "words_to_use": ("words_to_use", "use", "preferred_words", "keywords", "常用词", "推荐词"),
    "words_never": ("words_never", "never", "banned_words", "forbidden_words", "avoid", "禁用词", "禁词"),
    "products": ("products", "product", "产品", "商品"),
}
_PRODUCT_SYNONYMS = {
    "name": ("name", "product", "product_name", "名称", "产品名"),
    "aliases": ("aliases", "alias", "other_names", "别名"),
    "selling_points": ("selling_points", "points", "features", "benefits", "卖点"),
    "price": ("price", "价格", "售价"),
    "specs": ("specs", "specifications", "spec", "规格", "参数"),
}


def _get(obj: dict[str, Any], names: tuple[str, ...]) -> Any:
    lowered = {re.sub(r"[\s-]+", "_", str(k).strip().lower()): v for k, v in obj.items()}
    return next((lowered[n] for n in names if lowered.get(n) not in (None, "", [], {})), None)


def _texts(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = re.split(r"\s*[、,，;；\n]\s*", value)
    if not isinstance(value, list):
        value = [value]
    return [str(v).strip() for v in value if str(v).strip()]


def _specs(value: Any) -> dict[str, Any]:
    """``[{"name": "容量", "value": "30ml"}]``, ``{"容量": "30ml"}`` or ``["容量 30ml"]`` → a table."""
    if isinstance(value, dict):
        return {str(k).strip(): v for k, v in value.items() if str(k).strip() and v not in (None, "")}
    table: dict[str, Any] = {}
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict):
            name, raw = str(item.get("name") or item.get("名称") or "").strip(), item.get("value") or item.get("值")
            if name and raw not in (None, ""):
                table[name] = raw
        elif isinstance(item, str) and (match := re.match(r"\s*([^\d:：]+?)\s*[:：]?\s*(\d.*)$", item)):
            table[match[1]] = match[2].strip()
    return table


def _product(raw: Any) -> dict[str, Any] | None:
    if isinstance(raw, str):
        return {"name": raw.strip()} if raw.strip() else None
    if not isinstance(raw, dict):
        return None
    price = _get(raw, _PRODUCT_SYNONYMS["price"])
    return {
        "name": str(_get(raw, _PRODUCT_SYNONYMS["name"]) or "").strip(),
        "aliases": _texts(_get(raw, _PRODUCT_SYNONYMS["aliases"])),
        "selling_points": _texts(_get(raw, _PRODUCT_SYNONYMS["selling_points"])),
        "price": price if price not in (None, "", 0) else None,
        "specs": _specs(_get(raw, _PRODUCT_SYNONYMS["specs"])),
    }


def parse_profile(text: str) -> Drafted:
    """A checked ``BrandProfile`` from the model's answer, or the problems."""
    value = extract_json(strip_reasoning(text))
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        value = value[0]
    if not isinstance(value, dict):
        return Drafted(None, ["the answer contained no JSON object"])
    if isinstance(value.get("profile"), dict):
        value = value["profile"]
    products = _get(value, _SYNONYMS["products"])
    data = {
        "name": str(_get(value, _SYNONYMS["name"]) or "").strip(),
        "audience": str(_get(value, _SYNONYMS["audience"]) or "").strip(),
        "tone": str(_get(value, _SYNONYMS["tone"]) or "").strip(),
        "words_to_use": _texts(_get(value, _SYNONYMS["words_to_use"])),
        "words_never": _texts(_get(value, _SYNONYMS["words_never"])),
        "products": [p for p in map(_product, products if isinstance(products, list) else [products]) if p],
    }
    try:
        profile = BrandProfile.from_dict(data)
    except BrandError as exc:
        return Drafted(None, [str(exc)])
    if found := problems(profile):
        return Drafted(None, found)
    return Drafted(profile)
