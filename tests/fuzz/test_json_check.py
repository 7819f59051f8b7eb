"""Ingress's fast JSON check refuses exactly what the parser that normalize uses refuses."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import replace_lone_surrogates
from hub.errors import MalformedPayload
from hub.sources._http import check_json_object, parse_json_object
from tests.fuzz.strategies import ODD_BODIES, bodies, json_values


def _verdict(check: object, body: bytes) -> str | None:
    """None when the body is accepted, else the error code."""
    try:
        check(body)  # type: ignore[operator]
    except MalformedPayload as exc:
        return exc.code
    return None


def _same(body: bytes) -> None:
    assert _verdict(check_json_object, body) == _verdict(parse_json_object, body), body[:200]


@pytest.mark.parametrize("name", sorted(ODD_BODIES))
def test_odd_bodies_get_the_same_verdict(name: str) -> None:
    _same(ODD_BODIES[name])


@pytest.mark.parametrize(
    "body",
    [
        b'{"n": ' + b"9" * 30 + b"}",  # beyond 64 bits: orjson makes it a float
        b'{"n": ' + b"9" * 400 + b"}",  # beyond a float: orjson refuses, stdlib takes it
        b'{"n": ' + b"9" * 4301 + b"}",  # beyond Python's int digits limit: both refuse
        b'{"n": -9223372036854775809}',
        b'{"n": 1e308, "m": 1e-400}',
        b'{"s": "\\ud800\\udc00", "t": "\\ud800"}',
        b'{"a": "\x01"}',  # a raw control character in a string
        b'{"a": 1,}',
        b"{'a': 1}",
        b'{"a": [' * 510 + b"]}" * 510,  # just under the deep-body cut-off
        b'{"a": [' * 600 + b"]}" * 600,  # over it: the stdlib's verdict
        b'{"a":' * 990 + b"1" + b"}" * 990,  # near the stdlib's recursion limit
        b'{"a":' * 1100 + b"1" + b"}" * 1100,  # beyond orjson's 1,024 levels
        b' \n{"a": 1}\t ',
        b'{"a": 1}\x00',
    ],
)
def test_edge_bodies_get_the_same_verdict(body: bytes) -> None:
    _same(body)


@settings(max_examples=400, deadline=None)
@given(bodies())
def test_random_bodies_get_the_same_verdict(body: bytes) -> None:
    _same(body)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_every_json_object_is_accepted(value: dict[str, object]) -> None:
    body = json.dumps(value).encode()
    assert _verdict(check_json_object, body) is None


def _stdlib_value(body: bytes) -> object:
    """The stdlib's reading of a body, lone surrogates as U+FFFD (the documented rule)."""
    return replace_lone_surrogates(json.loads(body.decode("utf-8")))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_the_fast_parse_reads_what_the_stdlib_reads(value: dict[str, object]) -> None:
    body = json.dumps(value).encode()
    assert parse_json_object(body) == _stdlib_value(body)


def test_only_integers_beyond_64_bits_read_differently() -> None:
    body = b'{"id": 18446744073709551615, "big": ' + b"9" * 30 + b', "f": 1.5e300}'
    parsed = parse_json_object(body)
    assert parsed["id"] == 18446744073709551615
    assert isinstance(parsed["id"], int)
    assert parsed["big"] == pytest.approx(1e30)
    assert isinstance(parsed["big"], float)
    assert parsed["f"] == 1.5e300
