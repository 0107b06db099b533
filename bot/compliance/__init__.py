"""Advertising-law and platform-rule checks for Chinese marketing copy (a lint, not legal advice).

``check(text, style=…, brand=…)`` returns ``Finding``s: the phrase as written, its offsets, the
rule, why, and a suggested rewrite. Rules are data (``data/*.toml``); see docs/compliance.md.
"""

from __future__ import annotations

from bot.compliance.brand import BrandError, BrandProfile, Money, Product, Spec, load_brand
from bot.compliance.engine import check
from bot.compliance.findings import Category, Finding, Severity
from bot.compliance.rules import RulesError, RuleSet, default_rules, load_rules, rules_for

__all__ = [
    "BrandError",
    "BrandProfile",
    "Category",
    "Finding",
    "Money",
    "Product",
    "RuleSet",
    "RulesError",
    "Severity",
    "Spec",
    "check",
    "default_rules",
    "load_brand",
    "load_rules",
    "rules_for",
]
