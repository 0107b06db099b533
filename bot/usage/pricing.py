"""What a gateway call costs, from the token counts the gateway reported."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Settings


@dataclass(frozen=True, slots=True)
class Prices:
    """Per million tokens. ``prompt_tokens`` as the gateway reports them include the cached
    ones (OpenAI's usage shape), so cached tokens are taken out and priced apart."""

    input: float = 0.0
    cached_input: float = 0.0
    output: float = 0.0
    currency: str = "USD"

    @classmethod
    def from_settings(cls, settings: Settings) -> Prices:
        cached = settings.price_cached_input if settings.price_cached_input is not None else settings.price_input
        return cls(settings.price_input, cached, settings.price_output, settings.currency)

    def cost(self, prompt_tokens: int, cached_tokens: int, completion_tokens: int) -> float:
        cached = max(0, min(cached_tokens, prompt_tokens))
        fresh = max(0, prompt_tokens - cached)
        return (fresh * self.input + cached * self.cached_input + max(0, completion_tokens) * self.output) / 1e6

    def money(self, amount: float) -> str:
        """Small amounts keep enough digits to be seen (a chat turn costs fractions of a cent)."""
        digits = 2 if amount >= 1 or amount == 0 else 4
        return f"{amount:,.{digits}f} {self.currency}"
