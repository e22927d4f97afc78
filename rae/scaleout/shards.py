"""Work split by query, for several processes or the nodes of a cluster.

A query's pairs stay together: its requirements and guidelines are made once, in one place, and its judgments share
a prompt prefix there (a server's prefix cache, or the embedded model's KV cache, serves them). Shards are balanced
by their number of pairs, the largest queries placed first.
"""

from rae.datasets.records import Pair


def shards_by_query(pairs: list[Pair], shards: int) -> list[list[Pair]]:
    """At most ``shards`` non-empty lists of pairs; every query's pairs in one of them."""
    by_query: dict[str, list[Pair]] = {}
    for pair in pairs:
        by_query.setdefault(pair.query, []).append(pair)
    buckets: list[list[Pair]] = [[] for _ in range(max(1, shards))]
    for group in sorted(by_query.values(), key=len, reverse=True):
        min(buckets, key=len).extend(group)
    return [bucket for bucket in buckets if bucket]
