"""A small shop backend whose bugs are real: bench/corpus/capture.py runs them to record traces."""
