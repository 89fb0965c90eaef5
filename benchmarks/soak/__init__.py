"""A chaos soak of every transport's clients: ``python -m benchmarks.soak --help``."""
