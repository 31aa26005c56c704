"""Stored-layout migrations (docs/deployment.md#migrations): `python -m straitruns.migrations`."""
