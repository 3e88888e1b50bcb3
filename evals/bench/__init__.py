"""Benchmarks at scale: `python -m evals.bench` (see evals/bench/__main__.py)."""
