"""YAML documents that remember where each value was written (for file:line:col errors)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hub.errors import ConfigError, Location

PathKey = tuple[str | int, ...]


# libyaml's parser when PyYAML was built with it: 10x faster on large rule sets.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Yaml12Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader with YAML 1.2 booleans: `on`, `off`, `yes`, `no` stay strings.

    Rule files start with `on:`; YAML 1.1 would read that key as the boolean True.
    """


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """Parsed data plus the 1-based line/col of every mapping key and value."""

    file: str
    data: Any
    marks: dict[PathKey, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: PathKey) -> Location:
        """The location of `path`, or of its nearest written ancestor."""
        for end in range(len(path), -1, -1):
            mark = self.marks.get(tuple(path[:end]))
            if mark is not None:
                return Location(self.file, mark[0], mark[1])
        return Location(self.file, 1, 1)


def load_yaml_text(text: str, file: str) -> YamlDocument:
    """Parse YAML safely; a syntax error or duplicate key becomes a located ConfigError."""
    try:
        loader = _Yaml12Loader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        raise ConfigError(f"invalid YAML: {exc.problem}", location=loc) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", location=Location(file)) from exc
    marks: dict[PathKey, tuple[int, int]] = {}
    if node is not None:
        _walk(node, (), marks, file)
    return YamlDocument(file=file, data=data, marks=marks)


def load_yaml_file(path: Path, display: str | None = None) -> YamlDocument:
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", location=Location(name)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte {exc.start})", location=Location(name), hint="save it as UTF-8"
        ) from exc
    return load_yaml_text(text, name)


def _walk(node: yaml.Node, path: PathKey, marks: dict[PathKey, tuple[int, int]], file: str) -> None:
    marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                loc = Location(file, key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                raise ConfigError(
                    f"duplicate key '{key}'", location=loc, hint="each key may appear once"
                )
            seen.add(key)
            _walk(value_node, (*path, key), marks, file)
            # A key's own position is the useful one for errors about that entry;
            # the value's start is kept under a suffix for "wrong type" messages.
            marks[(*path, key, "<value>")] = marks[(*path, key)]
            marks[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), marks, file)
