"""What a check reports: one ``Finding`` per phrase, quoting the text as written."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class Category(Enum):
    ABSOLUTE = "absolute"  # 广告法第九条第三项: 最佳、第一、顶级…
    GUARANTEE = "guarantee"  # 100%有效、永久、无副作用…
    EFFICACY = "efficacy"  # medical and efficacy claims for goods, foods, cosmetics (arts. 16–18)
    URGENCY = "urgency"  # fake scarcity and deadlines
    PRICE = "price"  # 全网最低价、比某宝便宜…
    PLATFORM = "platform"  # a platform's own rules: links, contact details, off-platform offers
    BRAND_WORD = "brand-word"  # a word the brand never uses
    BRAND_FACT = "brand-fact"  # a price or specification that contradicts the brand profile
    CUSTOM = "custom"  # an operator's own list

    @property
    def label_zh(self) -> str:
        return _LABELS_ZH[self]


_LABELS_ZH = {
    Category.ABSOLUTE: "绝对化用语",
    Category.GUARANTEE: "保证性用语",
    Category.EFFICACY: "功效/医疗用语",
    Category.URGENCY: "制造紧迫感",
    Category.PRICE: "价格比较",
    Category.PLATFORM: "平台规则",
    Category.BRAND_WORD: "品牌禁用词",
    Category.BRAND_FACT: "与品牌资料不符",
    Category.CUSTOM: "自定义规则",
}


class Severity(Enum):
    MUST_FIX = "must-fix"  # publishing it as written breaks a law or a platform rule
    REVIEW = "review"  # a claim only if untrue or in some contexts: a person decides


@dataclass(frozen=True, slots=True)
class Finding:
    phrase: str  # exactly as written: original[start:end]
    start: int
    end: int
    rule: str  # e.g. "absolute.superlative"
    category: Category
    severity: Severity
    explanation_zh: str
    explanation_en: str
    suggestion: str | None = None  # a rewrite for the span; "" = delete it; None = none offered
    source: str = ""  # where the rule comes from (law article, platform rule)

    def to_dict(self) -> dict[str, Any]:
        return {
            "phrase": self.phrase,
            "start": self.start,
            "end": self.end,
            "rule": self.rule,
            "category": self.category.value,
            "severity": self.severity.value,
            "explanation_zh": self.explanation_zh,
            "explanation_en": self.explanation_en,
            "suggestion": self.suggestion,
            "source": self.source,
        }
