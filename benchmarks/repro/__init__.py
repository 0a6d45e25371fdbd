"""Reproducers of terminator defects found by the benchmark and the reliability suite. Each is a
script: exit 0 when the defect is gone, 1 while it is still there (see benchmarks/RESULTS.md)."""
