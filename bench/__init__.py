"""rae's benchmarks and their fake model server: run from a checkout (``make bench``), not installed with rae."""
