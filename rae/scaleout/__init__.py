"""Past one process: several processes on one machine, a Ray cluster, and batch APIs; the work split by query."""
