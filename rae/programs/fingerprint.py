"""A short digest of a program's state, to name it in headers, reports and the records of what it judged.

It is never a store key: an answer is keyed on the request the model was sent (``rae.store.keys``), which holds
everything the program put in the prompt. This digest only tells two programs apart in a listing (an artifact and
the uncompiled program, two compilations): their class and DSPy's saved state (instructions, field descriptions,
demos) of every predictor.
"""

import hashlib
import json

import dspy


def program_fingerprint(module: dspy.Module) -> str:
    state = {"module": type(module).__qualname__, "state": module.dump_state()}
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()[:16]
