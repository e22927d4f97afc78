"""Bridges to the tools search teams already use: judgment lists (TREC, Quepid, OpenSearch SRW) in and out."""
