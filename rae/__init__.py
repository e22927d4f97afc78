"""rae: Retrieve, Annotate, Evaluate, Repeat. LLM relevance judgments for e-commerce search, fitted to human labels."""

__version__ = "0.1.0"
