"""What a call cost, in US dollars, from its tokens: the configured price for the model, else LiteLLM's price list,
else unknown.

A model run in-process costs nothing per call. An unknown price is None, never a made-up zero.
"""

from rae.config import ModelPrice, ModelSpec


def call_cost(spec: ModelSpec, price: ModelPrice | None, input_tokens: int | None, output_tokens: int | None) -> float | None:
    if price is not None:
        return round(((input_tokens or 0) * price.input_per_million + (output_tokens or 0) * price.output_per_million) / 1e6, 8)
    if spec.is_embedded:
        return 0.0
    if input_tokens is None and output_tokens is None:
        return None
    import litellm

    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=spec.name, prompt_tokens=input_tokens or 0, completion_tokens=output_tokens or 0
        )
    except Exception:  # litellm raises a plain Exception for a model it has no price for
        return None
    return round(prompt_cost + completion_cost, 8)
