"""Benchmarks: the core (``python -m bench.run --help``) and ``bot run`` as processes
(``python -m bench.service --help``)."""
