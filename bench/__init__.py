"""Benchmarks: each scenario measures a figure and a baseline in the same run on the same machine."""
