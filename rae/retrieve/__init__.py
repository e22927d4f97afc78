"""Step 2 of the loop: engines (or engine configurations) return their top k for each query.

An engine is anything with ``search(query, k) -> product ids`` (``base.SearchEngine``): BM25 over chosen fields, dense
embeddings, a fusion of others, any HTTP search service, or a TREC run file of results computed elsewhere.
``rankings.retrieve`` runs one engine over the queries; ``rankings.pairs_of`` turns its results into the
query-product pairs the judge will label.
"""
