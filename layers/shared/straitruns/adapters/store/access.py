"""Projects and API keys in the store. A key is found by the SHA-256 of the raw key."""

from straitruns.adapters.store.table import DynamoTable, Item
from straitruns.domain.models import ApiKey, Project
from straitruns.domain.timefmt import format_ts, parse_ts


def _project_pk(project_id: str) -> str:
    return f"PROJ#{project_id}"


def _key_hash_pk(key_hash: str) -> str:
    return f"APIKEY#{key_hash}"


def _key_id_pk(key_id: str) -> str:
    return f"KEYID#{key_id}"


class AccessStore:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def put_project(self, project: Project) -> None:
        item = {
            "pk": _project_pk(project.id),
            "sk": "PROJ",
            "id": project.id,
            "name": project.name,
            "created_at": format_ts(project.created_at),
        }
        self.table.transact([self.table.put_action(item, condition="attribute_not_exists(pk)")])

    def get_project(self, project_id: str) -> Project | None:
        item = self.table.get(_project_pk(project_id), "PROJ")
        if item is None:
            return None
        return Project(id=item["id"], name=item["name"], created_at=parse_ts(item["created_at"]))

    def put_api_key(self, key: ApiKey) -> None:
        """Stores the key under its hash, with a pointer from its id (for revocation)."""
        record = _api_key_item(key)
        pointer = {"pk": _key_id_pk(key.id), "sk": "KEYID", "key_hash": key.key_hash}
        self.table.transact(
            [
                self.table.put_action(record, condition="attribute_not_exists(pk)"),
                self.table.put_action(pointer, condition="attribute_not_exists(pk)"),
            ]
        )

    def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        item = self.table.get(_key_hash_pk(key_hash), "APIKEY")
        return _api_key_from_item(item) if item else None

    def api_key_by_id(self, key_id: str) -> ApiKey | None:
        pointer = self.table.get(_key_id_pk(key_id), "KEYID")
        return self.api_key_by_hash(pointer["key_hash"]) if pointer else None

    def put_revoked(self, key: ApiKey) -> None:
        self.table.batch_write([_api_key_item(key)])


def _api_key_item(key: ApiKey) -> Item:
    return {
        "pk": _key_hash_pk(key.key_hash),
        "sk": "APIKEY",
        "id": key.id,
        "project_id": key.project_id,
        "name": key.name,
        "scopes": list(key.scopes),
        "key_hash": key.key_hash,
        "created_at": format_ts(key.created_at),
        "expires_at": format_ts(key.expires_at) if key.expires_at else None,
        "revoked_at": format_ts(key.revoked_at) if key.revoked_at else None,
    }


def _api_key_from_item(item: Item) -> ApiKey:
    return ApiKey(
        id=item["id"],
        project_id=item["project_id"],
        name=item["name"],
        scopes=tuple(item.get("scopes") or ()),
        key_hash=item["key_hash"],
        created_at=parse_ts(item["created_at"]),
        expires_at=parse_ts(item["expires_at"]) if item.get("expires_at") else None,
        revoked_at=parse_ts(item["revoked_at"]) if item.get("revoked_at") else None,
    )
