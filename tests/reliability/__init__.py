"""Reliability tests: hostile input, bounded time and memory, fault and load scenarios."""
