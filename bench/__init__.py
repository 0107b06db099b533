"""Benchmarks of the core: ``python -m bench.run --help``."""
