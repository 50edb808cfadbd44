"""Benchmarks: compared variants run side by side in one process; results recorded in bench/results."""
