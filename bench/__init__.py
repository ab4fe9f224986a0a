"""Benchmarks of the suite; `python -m bench --help`."""
