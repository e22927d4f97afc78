"""What a call costs, in US dollars, from its tokens.

The price per token is found once per model: the configured price if there is one, nothing for a model run
in-process, else the price list DSPy ships (LiteLLM's, as a snapshot: no import of LiteLLM, no network), else
unknown. (Looking it up on every call cost more CPU than the call itself for a model the list does not know.) An
unknown price gives a cost of None, never a made-up zero.
"""

from collections.abc import Iterable

from rae.config import ModelPrice, ModelSpec

FREE = ModelPrice(input_per_million=0.0, output_per_million=0.0)


def resolve_price(spec: ModelSpec, configured: ModelPrice | None) -> ModelPrice | None:
    if configured is not None:
        return configured
    if spec.is_embedded:
        return FREE
    from dspy.clients.model_metadata import model_info

    provider, _, model = spec.name.rpartition("/")
    info = model_info(provider or "openai", model)
    prompt, completion = info.get("input_cost_per_token"), info.get("output_cost_per_token")
    if not isinstance(prompt, int | float) or not isinstance(completion, int | float):
        return None
    return ModelPrice(input_per_million=prompt * 1e6, output_per_million=completion * 1e6)


def call_cost(price: ModelPrice | None, input_tokens: int | None, output_tokens: int | None) -> float | None:
    """The call's cost; None when the price is unknown, or when a priced model's answer did not say its tokens (a
    server that reports no usage): a budget then counts the call's whole reservation, never a zero."""
    if price is None:
        return None
    if price == FREE:
        return 0.0
    if input_tokens is None or output_tokens is None:
        return None
    return round((input_tokens * price.input_per_million + output_tokens * price.output_per_million) / 1e6, 8)


def total_cost(costs: Iterable[float | None]) -> float | None:
    """The sum of several calls' costs, rounded as one call's is; unknown if any of them is unknown."""
    costs = list(costs)
    return None if any(c is None for c in costs) else round(sum(costs), 8)  # type: ignore[arg-type]
