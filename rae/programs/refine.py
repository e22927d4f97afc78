"""The field through which a refining attempt is told why the earlier answer was rejected.

A refining attempt (``rae.annotate.refine``) asks again with one more input field, the way ``dspy.Refine`` passes its
advice. The field comes last among the inputs, and the embedded model's adapter leaves it out of the system message,
so an attempt's prompt is the first attempt's prompt up to the end of the listing, and llama.cpp evaluates only what
follows (``rae.lm.adapter.GrammarJSONAdapter``).
"""

import dspy

HINT_FIELD = "hint_"
HINT_DESCRIPTION = "why an earlier answer to this same input was rejected: write content, not a placeholder"
HINT = dspy.InputField(desc=HINT_DESCRIPTION)
