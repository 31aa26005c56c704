"""Strait Runs: job-run management and monitoring (shared package of every function)."""
