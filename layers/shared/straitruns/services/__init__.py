"""Use cases. They know nothing of HTTP; adapters are passed in."""
