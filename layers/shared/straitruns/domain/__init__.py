"""Pure models and rules: no I/O, imports nothing from services, adapters or api."""
