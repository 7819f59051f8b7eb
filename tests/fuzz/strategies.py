"""Hypothesis strategies for hostile webhook input: bodies, headers, mutated real payloads."""

from __future__ import annotations

import copy
import gzip
import json
import urllib.parse
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from tests.support import FIXTURES

#: Halves of UTF-16 pairs. `json.dumps` writes them as `\\ud83d` escapes, which are legal
#: JSON (JavaScript writes one when it cuts an emoji in half), but a Python str holding one
#: cannot be encoded as UTF-8: by a JSON response, a page, a file or an HTTP body.
LONE_SURROGATES = ("\ud800", "\ud83d", "\udbff", "\udc00", "\ude00", "\udfff")


def _texts(max_size: int) -> st.SearchStrategy[str]:
    """Any text, or text with a lone surrogate somewhere in it."""
    cut = st.tuples(
        st.text(max_size=max_size // 2),
        st.sampled_from(LONE_SURROGATES),
        st.text(max_size=max_size // 2),
    ).map("".join)
    return st.text(max_size=max_size) | cut


#: Any JSON value, nested a little; floats finite so `json.dumps` writes real JSON.
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _texts(20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_texts(8), inner, max_size=4),
    max_leaves=12,
)

#: Bodies that are hard on parsers; each is wrong in its own way, or oddly right.
ODD_BODIES: dict[str, bytes] = {
    "empty": b"",
    "whitespace": b" \r\n\t ",
    "null": b"null",
    "array": b"[1, 2]",
    "string": b'"just a string"',
    "nan": b'{"a": NaN}',
    "infinity": b'{"a": -Infinity}',
    "float-overflow": b'{"a": 1e999}',
    "huge-int": b'{"id": ' + b"9" * 5000 + b"}",
    "big-int-id": b'{"id": 123456789012345678901234567890, "type": 2}',
    "deep-array": b"[" * 30_000 + b"]" * 30_000,
    "deep-object": b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    "just-under-recursion-limit": b'{"a":' * 900 + b"1" + b"}" * 900,
    "duplicate-keys": b'{"id": "1", "id": {"x": 1}, "type": 2, "type": "x"}',
    "invalid-utf8": b'{"a": "\xff\xfe\xc3\x28"}',
    "utf8-bom": b'\xef\xbb\xbf{"a": 1}',
    "utf16": '{"a": "é"}'.encode("utf-16"),
    "latin1": '{"a": "é"}'.encode("latin-1"),
    "lone-surrogate-escape": b'{"a": "\\ud800"}',
    "lone-surrogate-key": b'{"\\uDFFF": "cut \\ud83d", "ok": "\\ud83d\\ude00"}',
    "nul-bytes": b'{"a": "\x00"}\x00',
    "trailing-garbage": b'{"a": 1} {"b": 2}',
    "gzip-json": gzip.compress(b'{"zen": "gzipped", "hook_id": 1}'),
    "form": b"payload=%7B%7D&payload=%5B%5D&command=%2Fx",
    "form-bad-percent": b"command=%2F%ZZ&text=%FF%FE",
    "form-payload-not-json": b"payload=%7Bnot+json",
    "multipart": b'--x\r\nContent-Disposition: form-data; name="payload"\r\n\r\n{}\r\n--x--\r\n',
    "ssl-check": b"ssl_check=1&token=x",
    "notion-handshake": b'{"verification_token": "secret_fuzzHandshakeTokenNotReal"}',
    "notion-handshake-not-a-string": b'{"verification_token": {"x": [1]}}',
    "slack-url-verification": b'{"type": "url_verification", "challenge": 5}',
    "discord-ping": b'{"type": 1, "id": "1"}',
    "discord-ping-huge-id": b'{"type": 1, "id": "' + b"9" * 400 + b'"}',
}

CONTENT_TYPES = (
    None,
    "application/json",
    "application/json; charset=utf-16",
    "application/json; charset=latin-1",
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=iso-8859-1",
    "text/plain",
    "multipart/form-data; boundary=x",
    "application/octet-stream",
    "Application/JSON",
    "json",
    "",
)

#: Headers the sources read, plus ones that change how a body could be read.
HEADER_NAMES = (
    "content-type",
    "content-encoding",
    "content-length",
    "x-hub-signature-256",
    "x-github-event",
    "x-github-delivery",
    "x-notion-signature",
    "x-switchboard-token",
    "x-switchboard-automation",
    "x-signature-ed25519",
    "x-signature-timestamp",
    "x-slack-signature",
    "x-slack-request-timestamp",
    "authorization",
    "transfer-encoding",
)

#: Header values as raw bytes: anything but the bytes that end a header line.
header_values = st.binary(max_size=80).map(
    lambda b: b.replace(b"\r", b"").replace(b"\n", b"").replace(b"\x00", b"")
) | st.sampled_from(
    [
        b"sha256=",
        b"sha256=" + b"0" * 64,
        b"v0=" + b"f" * 64,
        b"gzip",
        b"deflate, br",
        b"\xb2",  # latin-1 superscript two: str.isdigit() is True, int() refuses it
        b"99999999999999999999999",
        b"-1",
        b"00000000000000000000000000001",
        b"1" * 13,
        b"Bearer x",
    ]
)

raw_headers = st.lists(
    st.tuples(st.sampled_from(HEADER_NAMES).map(str.encode), header_values), max_size=8
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """A request body: random bytes, an odd one from the list, or some JSON value."""
    kind = draw(st.sampled_from(["binary", "odd", "json", "text"]))
    if kind == "binary":
        return draw(st.binary(max_size=300))
    if kind == "odd":
        return ODD_BODIES[draw(st.sampled_from(sorted(ODD_BODIES)))]
    if kind == "text":
        encoding = draw(st.sampled_from(["utf-8", "utf-16-le", "utf-32", "latin-1", "cp1252"]))
        return draw(st.text(max_size=100)).encode(encoding, "replace")
    return json.dumps(draw(json_values)).encode()


# --- real payloads, mutated ----------------------------------------------------------------


@cache
def _json_fixture(*parts: str) -> Any:
    return json.loads(FIXTURES.joinpath(*parts).read_text(encoding="utf-8"))


@cache
def github_fixtures() -> tuple[tuple[str, Path], ...]:
    """(X-GitHub-Event, payload file) for every stored GitHub example."""
    root = FIXTURES / "github"
    return tuple((path.parent.name, path) for path in sorted(root.glob("*/*.json")))


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside `doc` (dict keys and list indexes)."""
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, doc: Any) -> Any:
    """`doc` with a few values replaced by random JSON or removed."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        if not path:
            doc = draw(json_values)
            continue
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
    return doc


@st.composite
def github_payloads(draw: st.DrawFn) -> tuple[str, bytes]:
    event, path = draw(st.sampled_from(github_fixtures()))
    doc = json.loads(path.read_text(encoding="utf-8"))
    if draw(st.booleans()):
        doc = draw(mutated(doc))
    event = draw(st.sampled_from([event, event, "push", "ping", "issues", "x_y", "Issues"]))
    return event, json.dumps(doc).encode()


NOTION_WEBHOOKS = (
    "page.created.json",
    "page.properties_updated.json",
    "page.properties_updated.api-2025-09-03.json",
    "page.deleted.json",
    "page.moved.json",
    "comment.created.json",
    "database.schema_updated.json",
    "data_source.content_updated.json",
)


@st.composite
def notion_payloads(draw: st.DrawFn) -> bytes:
    doc = copy.deepcopy(_json_fixture("notion", "webhooks", draw(st.sampled_from(NOTION_WEBHOOKS))))
    doc["id"] = str(draw(st.uuids()))  # a new delivery, so it is stored, not a duplicate
    return json.dumps(draw(mutated(doc))).encode()


@st.composite
def automation_payloads(draw: st.DrawFn) -> bytes:
    doc = _json_fixture("notion", "automation", "send-webhook.json")
    return json.dumps(draw(mutated(doc))).encode()


@st.composite
def discord_payloads(draw: st.DrawFn) -> bytes:
    name = draw(
        st.sampled_from(["interaction.application_command.tasks.json", "interaction.ping.json"])
    )
    doc = copy.deepcopy(_json_fixture("discord", name))
    doc["id"] = str(draw(st.integers(min_value=1, max_value=2**63)))  # a new interaction
    doc = draw(mutated(doc))
    if isinstance(doc, dict) and draw(st.booleans()):
        doc["type"] = draw(st.sampled_from([1, 2, 3, 4, 5, 6, 0, "2", None, True]))
    return json.dumps(doc).encode()


@st.composite
def slack_payloads(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["command", "interaction", "random-form"]))
    if kind == "random-form":
        form = draw(st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=6))
        if draw(st.booleans()):
            form["command"] = "/" + draw(st.text(max_size=10))
        return urllib.parse.urlencode(form).encode()
    name = "slash-command.body.txt" if kind == "command" else "block_actions.body.txt"
    text = FIXTURES.joinpath("slack", name).read_text(encoding="utf-8")
    pairs = urllib.parse.parse_qsl(text, keep_blank_values=True)
    out: list[tuple[str, str]] = []
    for key, value in pairs:
        if key == "payload":
            value = json.dumps(draw(mutated(json.loads(value))))
        elif draw(st.integers(min_value=0, max_value=3)) == 0:
            value = draw(st.text(max_size=40))
        out.append((key, value))
    return urllib.parse.urlencode(out).encode()
