"""Benchmarks of the gateway core against its peers; see bench/README.md."""
