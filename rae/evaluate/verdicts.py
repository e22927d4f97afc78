"""Non-inferiority at a margin: the decision a gate, a tuner and the coverage study all make from an interval of
candidate minus baseline."""

import math

from rae.stats import Estimate

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"


def decide(interval: Estimate, margin: float) -> str:
    """**pass** when the interval's lower end is above -margin (whatever the candidate loses, it is less than the
    margin), **fail** when its upper end is below -margin, **inconclusive** when it straddles -margin."""
    if interval.ci_low > -margin:
        return PASS
    if interval.ci_high < -margin:
        return FAIL
    return INCONCLUSIVE


def judged_by_humans(found: Estimate, margin: float) -> str | None:
    """What the humans' own labels (``rae.evaluate.found_labels``) say of a pass: a fail when their interval lies below
    -margin, no pass when their estimate does, nothing otherwise."""
    if found.has_interval and found.ci_high < -margin:
        return FAIL
    if math.isfinite(found.value) and found.value < -margin:
        return INCONCLUSIVE
    return None
