"""The LM layer: the embedded model's engine, the factory that turns a model spec into a ``dspy.LM``, call records
and prices."""

import os

# LiteLLM fetches its price list from GitHub when it is first imported unless told to use the copy it ships with;
# rae must work offline, so it always uses the shipped copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
