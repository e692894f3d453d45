"""Benchmarks: each bench_*.py exposes run() -> dict; `python -m bench` runs them all."""
