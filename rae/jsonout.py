"""JSON for people's tools: plain numbers, and null where a number is undefined (JSON has no NaN or infinity)."""

import json
import math
from typing import Any

import numpy as np


def plain(value: Any) -> Any:
    """numpy numbers become Python numbers; NaN and infinity (an undefined interval, say) become None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def dumps(value: Any) -> str:
    return json.dumps(plain(value), indent=2, allow_nan=False, default=str)
