"""strait-runs: the command line client of the Strait Runs HTTP API."""

__version__ = "0.1.0"
