"""Keys written at the wrong indentation in a rule file, said as what to do about them.

The schema sees only the parsed tree: `channel:` two spaces short of `discord:` becomes a
second key of the action ("has too many properties"), and `fields.merged:` level with an
empty `where:` is "an unknown key" beside "None is not of type 'object'". Here a key is
misplaced when the key written just above it at the same column is empty, a mapping or a
list of mappings that accepts it, while its own mapping does not: the error names the key,
its new parent and how many spaces to add, at the key's own file:line:col.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.base import Connector
from hub.errors import RuleError
from hub.yamldoc import PathKey, YamlDocument

_NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


@dataclass(frozen=True, slots=True)
class Misplaced:
    """`key` of the mapping at `parent` belongs inside `owner`'s value."""

    parent: PathKey
    key: str
    owner: str
    #: Paths whose schema errors this explains (they go away once the key is moved).
    explains: tuple[PathKey, ...]
    error: RuleError


def find_misplaced(
    doc: YamlDocument, schema: Mapping[str, Any], connectors: Mapping[str, type[Connector]]
) -> list[Misplaced]:
    """Every misplaced key of a parsed rule file, in file order."""
    finder = _Finder(doc, schema, connectors)
    finder.walk((), doc.data, schema)
    return finder.found


def spaces(count: int) -> str:
    """`two more spaces`: counts a reader need not add up."""
    word = _NUMBERS[count] if count < len(_NUMBERS) else str(count)
    return f"{word} more space{'' if count == 1 else 's'}"


class _Finder:
    def __init__(
        self,
        doc: YamlDocument,
        root: Mapping[str, Any],
        connectors: Mapping[str, type[Connector]],
    ) -> None:
        self.doc = doc
        self.root = root
        self.connectors = connectors
        self.found: list[Misplaced] = []

    def walk(self, path: PathKey, value: Any, schema: Mapping[str, Any] | None) -> None:
        schema = self._resolve(schema)
        if isinstance(value, list):
            for index, item in enumerate(value):
                self.walk((*path, index), item, self._child(path, schema, index))
        elif isinstance(value, dict):
            self._mapping(path, value, schema)
            for key, item in value.items():
                self.walk((*path, key), item, self._child(path, schema, key))

    def _mapping(self, path: PathKey, value: dict[str, Any], schema: Mapping[str, Any]) -> None:
        keys = list(value)
        is_action = _is_action(path)
        moved: set[str] = set()
        for index, key in enumerate(keys[1:], start=1):
            if not is_action and _allows(schema, key):
                continue
            owner = next((k for k in reversed(keys[:index]) if k not in moved), None)
            if owner is None or not self._same_column(path, owner, key):
                continue
            if is_action:
                if owner != keys[0]:
                    continue
            else:
                owner_schema = self._resolve(self._child(path, schema, owner))
                if not self._accepts(owner_schema, value[owner], key):
                    continue
            self.found.append(self._misplaced(path, value, owner, key))
            moved.add(key)

    def _misplaced(self, path: PathKey, value: dict[str, Any], owner: str, key: str) -> Misplaced:
        owner_line, owner_col = self.doc.marks[(*path, owner)]
        key_col = self.doc.marks[(*path, key)][1]
        inner = value[owner]
        explains: list[PathKey] = [path, (*path, owner), (*path, key)]
        where = f"under `{owner}:`"
        line_up = ""
        if isinstance(inner, list) and inner:
            last = (*path, owner, len(inner) - 1)
            first = next(iter(inner[-1]))
            target = self.doc.marks[(*last, first)][1]
            explains.append(last)
            where = f"in the last item of `{owner}:`"
            line_up = f" to line up with `{first}:`"
        elif isinstance(inner, dict) and inner:
            first = next(iter(inner))
            target = self.doc.marks[(*path, owner, first)][1]
            line_up = f" to line up with `{first}:`"
        else:
            target = owner_col + 2
        message = f"`{key}:` belongs {where} (line {owner_line})"
        return Misplaced(
            parent=path,
            key=key,
            owner=owner,
            explains=tuple(explains),
            error=RuleError(
                message,
                location=self.doc.locate((*path, key)),
                hint=f"indent it by {spaces(target - key_col)}{line_up}",
            ),
        )

    def _same_column(self, path: PathKey, owner: str, key: str) -> bool:
        a, b = self.doc.marks.get((*path, owner)), self.doc.marks.get((*path, key))
        return a is not None and b is not None and a[1] == b[1] and a[0] < b[0]

    def _accepts(self, schema: Mapping[str, Any], inner: Any, key: str) -> bool:
        """Could `key` be written inside this value (empty, a mapping, mappings)?"""
        if isinstance(inner, list):
            if not inner or not isinstance(inner[-1], dict):
                return False
            schema = self._resolve(schema.get("items") if isinstance(schema, dict) else None)
        elif inner is not None and not isinstance(inner, dict):
            return False
        if not _takes_mapping(schema):
            return False
        return _allows(schema, key)

    def _child(self, path: PathKey, schema: Mapping[str, Any], key: str | int) -> Any:
        if _is_action(path) and isinstance(key, str):
            connector = self.connectors.get(key.partition(".")[0])
            return connector.params_schema if connector is not None else {}
        if isinstance(key, int):
            return schema.get("items", {})
        properties = schema.get("properties", {})
        if key in properties:
            return properties[key]
        extra = schema.get("additionalProperties")
        return extra if isinstance(extra, dict) else {}

    def _resolve(self, schema: Any) -> Mapping[str, Any]:
        if not isinstance(schema, dict):
            return {}
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return self._resolve(self.root.get("$defs", {}).get(ref.removeprefix("#/$defs/")))
        return schema


def _is_action(path: PathKey) -> bool:
    """`rules[i].actions[j]`: one connector key whose value holds the parameters."""
    return len(path) == 4 and path[0] == "rules" and path[2] == "actions"


def _takes_mapping(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    return "object" in kinds or "properties" in schema


def _allows(schema: Mapping[str, Any], key: str) -> bool:
    """May `key` appear in a mapping of this schema? Open mappings check key patterns."""
    if not schema:
        return True
    if key in schema.get("properties", {}):
        return True
    if schema.get("additionalProperties") is False:
        return False
    names = schema.get("propertyNames", {})
    pattern = names.get("pattern") if isinstance(names, dict) else None
    return not isinstance(pattern, str) or re.search(pattern, key) is not None
