"""What a real model's call costs in credits, and the figures learned from completed runs.

A model is priced in credits per 1,000 tokens, input and output apart. The estimate for
such a model uses the tokens per call and the yields measured on the site's completed
runs; before there are any, the priors below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from automation.domain.estimate import AI_STAGES, LEARNED, PRIOR, PRIOR_RATES, Rate


@dataclass(frozen=True)
class TokenPrice:
    """Credits per 1,000 tokens."""

    input: int
    output: int


@dataclass(frozen=True)
class StageUsage:
    """What a stage did over some completed runs: items in, outputs made, AI calls, and
    the tokens of the calls that reported them (``metered_calls``)."""

    items: int = 0
    outputs: int = 0
    metered_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: StageUsage) -> StageUsage:
        return StageUsage(
            self.items + other.items,
            self.outputs + other.outputs,
            self.metered_calls + other.metered_calls,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
        )


# Tokens (input, output) of one call at each AI stage, before a site has completed runs:
# the prompts' sizes plus the answers they ask for (a clustered batch of 20 keywords, two
# ideas, an article of 500-900 words, two prompts, one SVG).
PRIOR_TOKENS: Mapping[int, tuple[int, int]] = {
    1: (400, 300),
    2: (200, 250),
    4: (250, 1300),
    5: (1200, 120),
    6: (100, 900),
}


def call_credits(
    input_tokens: Fraction | int, output_tokens: Fraction | int, price: TokenPrice
) -> int:
    """Credits of one call: its tokens at the price, rounded up, at least 1."""
    cost = Fraction(input_tokens) * price.input + Fraction(output_tokens) * price.output
    return max(1, -(-cost.numerator // (cost.denominator * 1000)))


def token_rates(usage: Mapping[int, StageUsage], price: TokenPrice) -> dict[int, Rate]:
    """Each stage's yield and credits per call for a model priced by tokens: learned where
    the site's completed runs measured them, the priors where not."""
    rates: dict[int, Rate] = {}
    for stage, prior in PRIOR_RATES.items():
        seen = usage.get(stage, StageUsage())
        learned = seen.items > 0
        yield_ = Fraction(seen.outputs, seen.items) if learned else prior.yield_
        if stage not in AI_STAGES:
            per_call = Fraction(0)
        elif seen.metered_calls:
            calls = seen.metered_calls
            tokens = Fraction(seen.input_tokens, calls), Fraction(seen.output_tokens, calls)
            per_call = Fraction(call_credits(*tokens, price))
            learned = True
        else:
            per_call = Fraction(call_credits(*PRIOR_TOKENS[stage], price))
            learned = False
        rates[stage] = Rate(yield_, per_call, LEARNED if learned else PRIOR)
    return rates
