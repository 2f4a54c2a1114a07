"""Benchmarks of the service, run with ``python -m bench`` (see bench/README.md)."""
