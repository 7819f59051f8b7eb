"""Load connector and source plugins from entry points into read-only mappings."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from connectors.base import Connector
from hub.errors import PluginError
from hub.sources.base import Source

CONNECTOR_GROUP = "switchboard.connectors"
SOURCE_GROUP = "switchboard.sources"


@dataclass(frozen=True, slots=True)
class Plugins:
    """The installed plugins, by name; built once at start-up."""

    sources: Mapping[str, type[Source]]
    connectors: Mapping[str, type[Connector]]


def load_plugins() -> Plugins:
    return Plugins(
        sources=_load(SOURCE_GROUP, Source, ("settings_schema",)),
        connectors=_load(CONNECTOR_GROUP, Connector, ("params_schema", "destination_schema")),
    )


def _load(group: str, protocol: type, schema_attrs: tuple[str, ...]) -> Mapping[str, Any]:
    found: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for ep in entry_points(group=group):
        dist = _dist_name(ep)
        if ep.name in found:
            raise PluginError(
                f"{group}: '{ep.name}' is registered twice ({origin[ep.name]} and {dist}); "
                "uninstall one of them"
            )
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plugin must name itself, whatever it raised
            raise PluginError(f"{group}: '{ep.name}' from {dist} failed to import: {exc}") from exc
        if getattr(cls, "name", None) != ep.name:
            raise PluginError(
                f"{group}: entry point '{ep.name}' from {dist} points at a class named "
                f"{getattr(cls, 'name', None)!r}; the names must be the same"
            )
        if not (isinstance(cls, type) and protocol in cls.__mro__):
            # The protocol's optional hooks have their defaults there; call sites rely on them.
            raise PluginError(
                f"{group}: '{ep.name}' from {dist} must subclass "
                f"{protocol.__module__}.{protocol.__name__} (it gives the optional hooks "
                "their defaults)"
            )
        for attr in schema_attrs:
            try:
                _check_schema(cls, attr)
            except (SchemaError, AttributeError) as exc:
                raise PluginError(f"{group}: '{ep.name}' from {dist} has a bad {attr}") from exc
        found[ep.name] = cls
        origin[ep.name] = dist
    return MappingProxyType(found)


@functools.cache
def _check_schema(cls: type, attr: str) -> None:
    """Check a plugin's schema once per process: the check costs ~30 ms a schema, and every
    CLI command (and test) loads the plugins again."""
    Draft202012Validator.check_schema(getattr(cls, attr))


def _dist_name(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return str(getattr(dist, "name", "unknown distribution"))
