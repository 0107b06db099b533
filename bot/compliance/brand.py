"""A brand profile: the facts copy must get right and the words a brand uses or never uses.

Plain frozen dataclasses, so a profile can be hashed, cached and stored (``to_dict`` /
``from_dict`` give the JSON shape; ``load_brand`` reads a JSON or TOML file)::

    {"name": "山茶集", "audience": "…", "tone": "…",
     "words_to_use": ["温和"], "words_never": ["便宜货"],
     "products": [{"name": "山茶花精华", "aliases": ["精华液"], "selling_points": ["…"],
                   "price": {"amount": "129", "currency": "CNY"},
                   "specs": {"容量": "30ml", "重量": {"value": 120, "unit": "g"}}}]}
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

# Currency names as written in copy → ISO code.
CURRENCIES = {
    "cny": "CNY",
    "rmb": "CNY",
    "元": "CNY",
    "块": "CNY",
    "¥": "CNY",
    "￥": "CNY",
    "人民币": "CNY",
    "usd": "USD",
    "$": "USD",
    "美元": "USD",
    "eur": "EUR",
    "€": "EUR",
    "hkd": "HKD",
    "港币": "HKD",
}
_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([^\d\s].*?)\s*$")


class BrandError(ValueError):
    """A profile that cannot be read; the message says which field."""


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, bool):
        raise BrandError(f"{where}: not a number")
    try:
        number = Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        raise BrandError(f"{where}: {value!r} is not a number") from None
    if not number.is_finite() or number < 0:
        raise BrandError(f"{where}: {value!r} is not a positive number")
    return number


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str = "CNY"

    @classmethod
    def parse(cls, raw: Any, where: str = "price") -> Money:
        """``129``, ``"¥129"``, ``"129元"``, or ``{"amount": 129, "currency": "CNY"}``."""
        if isinstance(raw, dict):
            currency = str(raw.get("currency", "CNY")).strip()
            return cls(_decimal(raw.get("amount"), where), CURRENCIES.get(currency.lower(), currency.upper()))
        if isinstance(raw, int | float | Decimal):
            return cls(_decimal(raw, where))
        text = str(raw).strip()
        match = re.fullmatch(
            r"([¥￥$€]|rmb|cny|usd|eur|hkd)?\s*(\d[\d,]*(?:\.\d+)?)\s*(元|块|rmb|cny|usd|eur|hkd)?", text, re.IGNORECASE
        )
        if not match:
            raise BrandError(f"{where}: {text!r} is not a price (write 129, ¥129 or 129元)")
        unit = (match.group(1) or match.group(3) or "cny").lower()
        return cls(_decimal(match.group(2), where), CURRENCIES.get(unit, unit.upper()))

    def __str__(self) -> str:
        amount = format(self.amount.normalize(), "f")
        return f"¥{amount}" if self.currency == "CNY" else f"{amount} {self.currency}"


@dataclass(frozen=True, slots=True)
class Spec:
    """One specification: 容量 = 350 ml."""

    name: str
    value: Decimal
    unit: str

    def __str__(self) -> str:
        return f"{self.name} {format(self.value.normalize(), 'f')}{self.unit}"


def _spec(name: str, raw: Any, where: str) -> Spec:
    if isinstance(raw, dict):
        return Spec(name, _decimal(raw.get("value"), where), str(raw.get("unit", "")).strip())
    match = _QUANTITY.match(str(raw))
    if not match:
        raise BrandError(f"{where}: {raw!r} is not a value with a unit (write 350ml)")
    return Spec(name, _decimal(match.group(1), where), match.group(2))


@dataclass(frozen=True, slots=True)
class Product:
    name: str
    selling_points: tuple[str, ...] = ()
    price: Money | None = None
    specs: tuple[Spec, ...] = ()
    aliases: tuple[str, ...] = ()  # other names the copy may use for it ("精华液")

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    def spec(self, name: str) -> Spec | None:
        return next((s for s in self.specs if s.name == name), None)


@dataclass(frozen=True, slots=True)
class BrandProfile:
    name: str
    products: tuple[Product, ...] = ()
    audience: str = ""
    tone: str = ""
    words_to_use: tuple[str, ...] = ()
    words_never: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BrandProfile:
        if not isinstance(data, dict) or not str(data.get("name", "")).strip():
            raise BrandError("name: a brand profile needs a name")
        products = []
        for i, raw in enumerate(data.get("products") or []):
            where = f"products[{i}]"
            if not isinstance(raw, dict) or not str(raw.get("name", "")).strip():
                raise BrandError(f"{where}: every product needs a name")
            specs = raw.get("specs") or {}
            if not isinstance(specs, dict):
                raise BrandError(f"{where}.specs: a table of name → value with unit")
            products.append(
                Product(
                    name=str(raw["name"]).strip(),
                    selling_points=_texts(raw.get("selling_points"), f"{where}.selling_points"),
                    price=Money.parse(raw["price"], f"{where}.price") if raw.get("price") not in (None, "") else None,
                    specs=tuple(_spec(str(k), v, f"{where}.specs.{k}") for k, v in specs.items()),
                    aliases=_texts(raw.get("aliases"), f"{where}.aliases"),
                )
            )
        return cls(
            name=str(data["name"]).strip(),
            products=tuple(products),
            audience=str(data.get("audience", "")).strip(),
            tone=str(data.get("tone", "")).strip(),
            words_to_use=_texts(data.get("words_to_use"), "words_to_use"),
            words_never=_texts(data.get("words_never"), "words_never"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "audience": self.audience,
            "tone": self.tone,
            "words_to_use": list(self.words_to_use),
            "words_never": list(self.words_never),
            "products": [
                {
                    "name": p.name,
                    "aliases": list(p.aliases),
                    "selling_points": list(p.selling_points),
                    "price": (
                        {"amount": format(p.price.amount.normalize(), "f"), "currency": p.price.currency}
                        if p.price
                        else None
                    ),
                    "specs": {s.name: {"value": format(s.value.normalize(), "f"), "unit": s.unit} for s in p.specs},
                }
                for p in self.products
            ],
        }


def _texts(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise BrandError(f"{where}: a list of texts")
    return tuple(str(v).strip() for v in value if str(v).strip())


def load_brand(path: str | Path) -> BrandProfile:
    """A profile from a ``.json`` or ``.toml`` file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise BrandError(f"{path}: {exc}") from None
    return BrandProfile.from_dict(data)
