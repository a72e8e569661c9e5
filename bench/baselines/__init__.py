"""Baselines measured in the same run as certcheck: the ceilings and the naive implementations."""
