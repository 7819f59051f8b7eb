"""JSON columns are written by orjson and read back as the stdlib would read them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import JSON, Column, Integer, MetaData, Table, insert, select

from hub.store.engine import dump_json, load_json, open_engine


@pytest.mark.parametrize(
    "value",
    [
        {"title": "Fix login ✓", "n": 3, "f": 1.5, "none": None, "list": [True, False]},
        {"beyond 64 bits": 2**70, "negative": -(2**65)},  # orjson refuses: the stdlib's text
        {"lone": "\ud800 half an emoji"},  # likewise
        {1: "an int key", "nested": {2: [1, 2]}},  # the stdlib makes keys strings
        [],
        "text",
    ],
)
def test_a_value_reads_back_as_the_stdlib_would_read_it(value: Any) -> None:
    text = dump_json(value)
    assert load_json(text) == json.loads(json.dumps(value))
    assert json.loads(text) == json.loads(json.dumps(value))


def test_a_json_column_round_trips_through_sqlite(tmp_path: Any) -> None:
    engine = open_engine(f"sqlite:///{tmp_path}/store.db")
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("v", JSON))
    table.create(engine)
    values = [{"a": "é", "big": 2**70}, {"lone": "\udfff"}, {"n": [1, 2.5, None]}]
    with engine.begin() as conn:
        conn.execute(insert(table), [{"id": i, "v": v} for i, v in enumerate(values)])
    with engine.connect() as conn:
        read = [row.v for row in conn.execute(select(table).order_by(table.c.id))]
    assert read == values
    engine.dispose()
