"""What a call cost, in US dollars, from its tokens: LiteLLM's price list where it knows the model, else unknown.

A model run in-process costs nothing per call. An unknown price is None, never a made-up zero.
"""

from rae.config import ModelSpec


def call_cost(spec: ModelSpec, input_tokens: int | None, output_tokens: int | None) -> float | None:
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
