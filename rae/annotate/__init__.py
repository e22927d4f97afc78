"""Steps 3 to 6 of the loop at run time: turn query-product pairs into stored judgments.

``executor`` is the store protocol every paid call goes through (a hit, or exactly one payer per key); ``steps``
are the program's stages on top of it (requirements, guidelines, image descriptions, judgments); ``run`` judges a
list of pairs with workers, in query order, within a budget (``spending``); ``cost_estimate`` says what a run would
cost before it starts.
"""
