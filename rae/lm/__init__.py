"""The LM layer: the embedded model's engine, the factory that turns a model spec into a ``dspy.LM``, call records,
retries, rate limits and prices."""
