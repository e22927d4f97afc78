"""A deterministic train/dev/test split by query.

A query's split is a function of its id and a seed alone, so adding queries to a labelled set never moves the
ones already assigned, and no two pairs of one query land in different splits (a query's guidelines would leak
from train into test). The bundled set's assignment is also frozen in ``splits.json``; a test checks that the rule
still reproduces it, so a published split can never drift.
"""

import hashlib
import json
from pathlib import Path

from rae.errors import RaeError

SPLITS: tuple[str, ...] = ("train", "dev", "test")
DEFAULT_SEED = "rae-esci-v1"
# Cumulative percent bounds: train is [0, 50), dev [50, 75), test [75, 100).
BOUNDS = {"train": 50, "dev": 75, "test": 100}


def split_of(query_id: str, seed: str = DEFAULT_SEED) -> str:
    bucket = int(hashlib.sha256(f"{seed}:{query_id}".encode()).hexdigest(), 16) % 100
    return next(name for name in SPLITS if bucket < BOUNDS[name])


def assign_splits(query_ids: list[str] | set[str], seed: str = DEFAULT_SEED) -> dict[str, str]:
    return {query_id: split_of(query_id, seed) for query_id in sorted(query_ids)}


class UnknownSplitError(RaeError, ValueError):
    pass


def check_split_name(split: str) -> str:
    if split not in SPLITS and split != "all":
        raise UnknownSplitError(f"unknown split {split!r} (expected one of {', '.join(SPLITS)} or all)")
    return split


def read_frozen_splits(path: Path) -> dict[str, str]:
    data = json.loads(path.read_text())
    return {query_id: split for split, ids in data["splits"].items() for query_id in ids}

