"""Who rated what, across the tools: raters named on import, one rating a pair where a format holds one, and Quepid's
judges named by email.

A rater's labels never merge silently with another's: labels under the labelled set's name are recognised as the
set's own (a re-imported export) and not stored twice, any other label under that name is refused, and a file of several raters is written to a format with one
rating a pair only as one rater's labels or as a consensus whose rule is named. Quepid's consensus is
``RatingsManager#calculate_rating_from_judgements`` (app/services/ratings_manager.rb): fewer than three ratings are
averaged (and rounded, for explicit judgements), else the lowest of the three highest; rae applies it to its gains
(0, 1, 2), Ruby's rounding of a half away from zero included.
"""

import math
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import replace

from rae.datasets.records import Rating
from rae.errors import RaeError
from rae.labels import LABELS, Label

ONE_RATING_FORMATS = ("trec", "quepid-csv", "quepid-ltr", "rre", "srw", "srw-csv")
CONSENSUS_RULES = ("quepid",)
# Ruby's URI::MailTo::EMAIL_REGEXP, which Quepid's User model validates a user's email against
EMAIL = re.compile(
    r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
)


class RaterError(RaeError, ValueError):
    pass


def imported_rater_names(named: list[str], rater: str | None, default: str) -> Mapping[str, str]:
    """The name each of a file's raters is stored under ('' for the file's unnamed labels).

    ``rater`` renames a file's one rater (or names its labels, where the format names none); a file of several raters
    keeps their names.
    """
    named_raters = sorted({n for n in named if n})
    if rater is not None:
        if len(named_raters) > 1:
            shown = ", ".join(named_raters[:5]) + (" ..." if len(named_raters) > 5 else "")
            raise RaterError(f"the file names {len(named_raters)} raters ({shown}); import it without --rater to keep each rater's name")
        names = {name: rater for name in [*named_raters, ""]}
    else:
        names = {"": default, **{name: name for name in named_raters}}
    return names


def without_the_sets_own(labels: list[Rating], own: Mapping[tuple[str, str], Label], name: str) -> tuple[list[Rating], list[str]]:
    """The labels to store, less those under the labelled set's name that are the set's own (a re-imported export:
    stored again, they would count twice); a label under that name that the set does not have is refused."""
    theirs = [r for r in labels if r.rater == name]
    if not theirs:
        return labels, []
    other = [r for r in theirs if own.get((r.query_id, r.product_id)) != r.label]
    if other:
        raise RaterError(f"{len(other)} labels under the labelled set's name {name!r} are not the set's (say {other[0].query!r}, {other[0].product_id}): "
                         "they would merge with its labels; name this file's rater with --rater")
    return [r for r in labels if r.rater != name], [f"{len(theirs)} labels are the labelled set's own ({name}), already in rae: not stored again"]


def several_raters(labels: list[Rating]) -> dict[tuple[str, str], list[Rating]]:
    """The pairs that more than one rater labelled."""
    return {pair: rs for pair, rs in _by_pair(labels).items() if len(rs) > 1}


def one_rating_a_pair(labels: list[Rating], fmt: str, consensus: str | None) -> list[Rating]:
    """The labels as one rating a pair: unchanged if each pair has one, Quepid's consensus if asked, else refused."""
    shared = several_raters(labels)
    if not shared:
        return labels
    if consensus == "quepid":
        return quepid_consensus(labels)
    raters = sorted({r.rater for rs in shared.values() for r in rs})
    raise RaterError(
        f"{len(shared)} pairs have labels by several raters ({', '.join(raters[:5])}) and {fmt} holds one rating a pair: "
        f"export one rater's (--rater NAME), or a consensus (--consensus quepid: Quepid's rule), or use quepid-book, csv or jsonl"
    )


def quepid_consensus(labels: list[Rating]) -> list[Rating]:
    """One label a pair by Quepid's rule; the rater is named after the rule."""
    return [replace(rs[0], label=LABELS[_quepid_rating([r.label.gain for r in rs])], rater="consensus:quepid", note="") for rs in _by_pair(labels).values()]


def _by_pair(labels: list[Rating]) -> dict[tuple[str, str], list[Rating]]:
    by_pair: dict[tuple[str, str], list[Rating]] = defaultdict(list)
    for r in labels:
        by_pair[(r.query_id, r.product_id)].append(r)
    return by_pair


def _quepid_rating(gains: list[int]) -> int:
    ratings = sorted(gains, reverse=True)
    if len(ratings) < 3:
        return math.floor(sum(ratings) / len(ratings) + 0.5)  # Ruby's Float#round: a half away from zero
    return min(ratings[:3])


def judge_emails(raters: list[str], given: list[str], fmt: str = "quepid-book") -> tuple[dict[str, str], list[str]]:
    """Each rater's Quepid email from ``--rater-email`` (``NAME=EMAIL``, or one ``EMAIL`` for a single rater; a rater
    whose name is an email keeps it), and a notice for each rater written without one (Quepid takes those as anonymous judgements)."""
    emails: dict[str, str] = {r: r for r in raters if EMAIL.match(r)}  # a rater named by its email (a Quepid judge) keeps it
    for item in given:
        name, sep, email = item.rpartition("=")
        if not sep:
            if len(raters) != 1:
                raise RaterError(f"--rater-email {item}: name the rater (NAME=EMAIL); the raters here are {', '.join(raters)}")
            name = raters[0]
        if not EMAIL.match(email):
            raise RaterError(f"--rater-email {item}: {email!r} is not an email Quepid accepts (its User model checks the format)")
        if name not in raters:
            raise RaterError(f"--rater-email {item}: no rater {name!r} here (raters: {', '.join(raters)})")
        emails[name] = email
    if len(set(emails.values())) < len(emails):
        raise RaterError("--rater-email: two raters under one email would be one Quepid judge rating a pair twice")
    missing = [r for r in raters if r not in emails]
    if len(missing) > 1:
        raise RaterError(f"{fmt}: Quepid names judges by email, and {len(missing)} raters have none ({', '.join(missing[:5])}); give each --rater-email NAME=EMAIL")
    noun = "judgements" if fmt == "quepid-book" else "ratings"
    notices = [f"{fmt}: no --rater-email for {r}: its {noun} are written without user_email (Quepid imports them as anonymous)" for r in missing]
    return emails, notices
