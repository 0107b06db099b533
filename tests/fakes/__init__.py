"""Protocol-faithful fake servers the tests (and the benchmark) run on 127.0.0.1."""
