"""Every installed connector documents its schemas the same way: valid JSON Schemas, and
every property with a description and examples that validate (what editors and
`docs/connectors/*` show admins)."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from hub.plugins import load_plugins

SCHEMAS = [
    pytest.param(getattr(cls, attr), id=f"{name}.{attr}")
    for name, cls in sorted(load_plugins().connectors.items())
    for attr in ("params_schema", "destination_schema")
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_every_property_has_a_description_and_valid_examples(schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(schema)
    for name, prop in schema.get("properties", {}).items():
        assert prop.get("description"), name
        assert prop.get("examples"), name
        validator = Draft202012Validator(prop)
        for example in prop["examples"]:
            assert validator.is_valid(example), f"{name}: {example!r}"
