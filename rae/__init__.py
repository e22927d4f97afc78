"""rae: Retrieve, Annotate, Evaluate, Repeat. LLM relevance judgments for e-commerce search, fitted to human labels."""

import os

# LiteLLM, and DSPy's model-metadata snapshot, fetch a price list from GitHub when first used unless told to use the
# copy they ship with. rae runs offline: it always uses the shipped copy, and never waits on the network for it.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# The dense engine's model ships inside a Python package; the Hugging Face libraries must never look for it on a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

__version__ = "0.1.0"
