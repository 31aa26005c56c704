"""Benchmarks of Strait Runs, kept apart from the tests: they print figures and never fail on one.

`make bench` runs `python -m benchmarks` (see benchmarks/__main__.py).
"""
