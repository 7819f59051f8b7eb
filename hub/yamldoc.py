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
        explained = _indentation_problem(text, mark.line, mark.column) if mark else None
        if explained is not None:
            (line, col), message, hint = explained
            raise ConfigError(message, location=Location(file, line, col), hint=hint) from exc
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


#: `key:` at the start of a line (after any `- `): its indentation, name and the rest.
_KEY_LINE = re.compile(
    r"^(?P<indent>\s*(?:-\s+)?)(?P<key>[^\s#'\"{\[&*!|>%@`-][^:#]*?):(?:\s+(?P<rest>.*))?$"
)
_NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def _spaces(count: int) -> str:
    word = _NUMBERS[count] if count < len(_NUMBERS) else str(count)
    return f"{word} space{'' if count == 1 else 's'}"


def _key_at(line: str) -> tuple[int, str, bool] | None:
    """(1-based column, key, has a value on this line) of a `key:` line, else None."""
    found = _KEY_LINE.match(line.rstrip())
    if found is None:
        return None
    rest = (found.group("rest") or "").strip()
    return len(found.group("indent")) + 1, found.group("key"), bool(rest) and rest[0] != "#"


def _indentation_problem(
    text: str, line_index: int, column: int
) -> tuple[tuple[int, int], str, str] | None:
    """The parser's words ("mapping values are not allowed here", "did not find expected
    '-' indicator") said as the key that is out of line and where it goes."""
    lines = text.splitlines()
    if not 0 <= line_index < len(lines):
        return None
    here = _key_at(lines[line_index])
    if here is None:
        return None
    col, key, _ = here
    above = [
        (index, found)
        for index in range(line_index - 1, -1, -1)
        if lines[index].strip() and not lines[index].lstrip().startswith("#")
        if (found := _key_at(lines[index])) is not None
    ]
    if not above:
        return None
    where = (line_index + 1, col)
    first_line, (above_col, above_key, above_has_value) = above[0]
    if column + 1 > col + len(key):
        # The error is past this line's own key: an unquoted `: ` inside its value.
        return (
            (line_index + 1, column + 1),
            f"the value of `{key}:` contains ': ', which YAML reads as another key",
            "put the value in quotes",
        )
    if col > above_col and above_has_value:
        return (
            where,
            f"`{key}:` is indented under `{above_key}:` (line {first_line + 1}), "
            "which already has a value",
            f"remove {_spaces(col - above_col)} to line up with `{above_key}:`"
            + (", under `where:` if it is a condition" if "." in key else "")
            + ", or give it a parent key of its own",
        )
    if col < above_col and not above_has_value:
        return (
            where,
            f"`{key}:` belongs under `{above_key}:` (line {first_line + 1})",
            f"indent it by {_spaces(above_col + 2 - col).replace(' ', ' more ', 1)}",
        )
    # Out of line with every key above it: line it up with the nearest deeper one.
    deeper = [(i, f) for i, f in above if f[0] > col]
    if col < above_col and deeper:
        index, (target, name, _) = min(deeper, key=lambda item: (item[1][0], -item[0]))
        return (
            where,
            f"`{key}:` is not lined up with `{name}:` (line {index + 1})",
            f"indent it by {_spaces(target - col).replace(' ', ' more ', 1)}",
        )
    return None
