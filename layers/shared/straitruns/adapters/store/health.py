"""The store's part of the health check: one consistent read of a key that never holds an item."""

from straitruns.adapters.store.table import DynamoTable

_PROBE_PK = "HEALTH#probe"
_PROBE_SK = "HEALTH"


def probe_table(table: DynamoTable) -> None:
    """Reads one (absent) item. Raises whatever the store raises when the table cannot be read."""
    table.get(_PROBE_PK, _PROBE_SK)
