"""Projects and API keys in the store. A key is found by the SHA-256 of the raw key; projects and
the keys of a project are listed oldest first through the by_project index."""

from datetime import datetime
from typing import Any

from straitruns.adapters.store import keys
from straitruns.adapters.store.table import DynamoTable, Item
from straitruns.domain.models import ApiKey, Project
from straitruns.domain.timefmt import format_ts, parse_ts

PROJECT_SK = "PROJ"
API_KEY_SK = "APIKEY"


def _project_pk(project_id: str) -> str:
    return f"PROJ#{project_id}"


def _key_hash_pk(key_hash: str) -> str:
    return f"APIKEY#{key_hash}"


def _key_id_pk(key_id: str) -> str:
    return f"KEYID#{key_id}"


def project_index_attributes(project_id: str, created_at: datetime) -> Item:
    """The by_project index attributes of a project item (all projects share one partition)."""
    return {
        keys.INDEX_PARTITION_ATTRIBUTE[keys.BY_PROJECT]: keys.ALL_PROJECTS,
        keys.SORT_ATTRIBUTE: keys.created_sort_key(created_at, project_id),
    }


def api_key_index_attributes(key_id: str, project_id: str, created_at: datetime) -> Item:
    """The by_project index attributes of an API key item (one partition per project)."""
    return {
        keys.INDEX_PARTITION_ATTRIBUTE[keys.BY_PROJECT]: keys.project_api_keys(project_id),
        keys.SORT_ATTRIBUTE: keys.created_sort_key(created_at, key_id),
    }


class AccessStore:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def put_project(self, project: Project) -> None:
        item = {
            "pk": _project_pk(project.id),
            "sk": PROJECT_SK,
            "id": project.id,
            "name": project.name,
            "created_at": format_ts(project.created_at),
            **project_index_attributes(project.id, project.created_at),
        }
        self.table.transact([self.table.put_action(item, condition="attribute_not_exists(pk)")])

    def get_project(self, project_id: str) -> Project | None:
        item = self.table.get(_project_pk(project_id), PROJECT_SK)
        return _project_from_item(item) if item else None

    def list_projects(self, limit: int, after: str | None) -> tuple[list[Project], str | None]:
        """Every project, oldest first; returns the page and the `csk` to continue after."""
        items, last = self._index_page(keys.ALL_PROJECTS, limit, after)
        return [_project_from_item(item) for item in items], last

    def list_api_keys(
        self, project_id: str, limit: int, after: str | None
    ) -> tuple[list[ApiKey], str | None]:
        """The keys of a project (revoked and expired ones included), oldest first."""
        items, last = self._index_page(keys.project_api_keys(project_id), limit, after)
        return [_api_key_from_item(item) for item in items], last

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
        item = self.table.get(_key_hash_pk(key_hash), API_KEY_SK)
        return _api_key_from_item(item) if item else None

    def api_key_by_id(self, key_id: str) -> ApiKey | None:
        pointer = self.table.get(_key_id_pk(key_id), "KEYID")
        return self.api_key_by_hash(pointer["key_hash"]) if pointer else None

    def put_revoked(self, key: ApiKey) -> None:
        self.table.batch_write([_api_key_item(key)])

    def _index_page(self, partition: str, limit: int, after: str | None) -> tuple[list[Item], str | None]:
        """One page of the by_project index partition, oldest first, read back from the table
        (the index holds keys only)."""
        condition = "project_pk = :p" + (" AND csk > :after" if after else "")
        values: dict[str, Any] = {":p": partition}
        if after:
            values[":after"] = after
        entries, more = self.table.query(
            index=keys.BY_PROJECT, key_condition=condition, values=values, limit=limit, ascending=True
        )
        found = self.table.batch_get((entry["pk"], entry["sk"]) for entry in entries)
        items = [
            found[(entry["pk"], entry["sk"])] for entry in entries if (entry["pk"], entry["sk"]) in found
        ]
        last = entries[-1][keys.SORT_ATTRIBUTE] if entries and more else None
        return items, last


def _project_from_item(item: Item) -> Project:
    return Project(id=item["id"], name=item["name"], created_at=parse_ts(item["created_at"]))


def _api_key_item(key: ApiKey) -> Item:
    return {
        "pk": _key_hash_pk(key.key_hash),
        "sk": API_KEY_SK,
        "id": key.id,
        "project_id": key.project_id,
        "name": key.name,
        "scopes": list(key.scopes),
        "key_hash": key.key_hash,
        "created_at": format_ts(key.created_at),
        "expires_at": format_ts(key.expires_at) if key.expires_at else None,
        "revoked_at": format_ts(key.revoked_at) if key.revoked_at else None,
        **api_key_index_attributes(key.id, key.project_id, key.created_at),
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
