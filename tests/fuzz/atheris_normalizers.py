"""Coverage-guided fuzzing (atheris/libFuzzer) of every source's `verify` + `normalize`.

Why, next to the Hypothesis suite (tests/fuzz/test_hooks_fuzz.py): Hypothesis draws from
strategies we wrote, so it finds what we thought of; libFuzzer mutates bytes and keeps
whatever reaches new branches of the instrumented `hub` code, so it walks into parser
corners nobody wrote a strategy for. It calls the sources directly, the way ingress and
the worker do, without HTTP or a store, so it runs thousands of inputs per second.

One input: [source][flags][header length: 2 bytes big-endian][headers][body]. Headers are
`name:value` lines, decoded as latin-1 as ingress decodes them. With flag bit 0 the
harness signs the body the way the provider would (a correct HMAC, Ed25519 signature or
token), so mutated bodies get past `verify` and into the parsers and `normalize`; without
it, the fuzzed headers face the signature checks. `x-fuzz-path` stands for the
`/hooks/<source>/<path>` suffix ingress turns into `x-switchboard-path`.

What counts as fine, as in the Hypothesis suite: `verify` refusing with a RequestRejected
(401/400/404/413 in ingress), or `normalize` refusing with MalformedPayload (the event is
marked failed, replayable). Anything else raised, or events that are not valid CloudEvents
per schemas/event.schema.json or cannot be stored as JSON, is a crash: atheris prints the
traceback, libFuzzer saves the input as `crash-*` under -artifact_prefix, exit status != 0.

    .venv/bin/python tests/fuzz/atheris_normalizers.py -atheris_runs=20000
    .venv/bin/python tests/fuzz/atheris_normalizers.py crash-<sha1>   # replay one input

The seeds are real fixtures from ../shared/fixtures, encoded in the input format and
written once to `switchboard-atheris-seeds-<digest>` under the system temp dir. With no
corpus directory on the command line, what libFuzzer finds and any crash-* artifact go to
a fresh `switchboard-atheris-*` directory there (printed at start; see `main`).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's directory comes first on sys.path, and tests/fuzz/hub.py
# would shadow the `hub` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import hashlib  # noqa: E402
import hmac  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import urllib.parse  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

import atheris  # noqa: E402

with atheris.instrument_imports(include=["hub", "connectors"]):
    from hub.clock import FakeClock
    from hub.errors import MalformedPayload, RequestRejected
    from hub.events import Event, event_id_for
    from hub.plugins import load_plugins
    from hub.runtime import make_source
    from hub.secrets import Secret
    from hub.sources.base import HookRequest, NormalizeContext, RawEvent, Source

    # Entry points import the source modules lazily: load them here, so they are
    # instrumented too (coverage feedback comes from these modules above all).
    PLUGINS = load_plugins()

import jsonschema  # noqa: E402
from nacl.signing import SigningKey  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO.parent / "shared" / "fixtures"
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
CLOCK = FakeClock(NOW)
PATH_HEADER = "x-switchboard-path"
FUZZ_PATH = "x-fuzz-path"
#: Ingress never stores these (hub/ingress/receive.py); the worker never sees them.
DROPPED = ("authorization", "cookie", "proxy-authorization", "x-goog-channel-token")

GITHUB_SECRET = "fuzz-github-secret-not-real"
NOTION_SECRET = "secret_fuzzNotionVerificationTokenNotReal"
AUTOMATION_TOKEN = "fuzz-automation-token-not-real"
SLACK_SECRET = "fuzz-slack-signing-secret-not-real"
GCAL_TOKEN = "fuzz-gcal-channel-token-not-real"
DISCORD_KEY = SigningKey(hashlib.sha256(b"fuzz-discord-key-not-real").digest())
SECRETS = {
    "github": GITHUB_SECRET,
    "notion": NOTION_SECRET,
    "notion-automation": AUTOMATION_TOKEN,
    "discord": DISCORD_KEY.verify_key.encode().hex(),
    "slack": SLACK_SECRET,
    "gcal": GCAL_TOKEN,
}


def _sources() -> dict[str, Source]:
    """Every installed source plugin, built as the runtime builds an unconfigured one."""
    return {name: make_source(cls, {}) for name, cls in sorted(PLUGINS.sources.items())}


SOURCES = _sources()
NAMES = sorted(SOURCES)
VALIDATOR = jsonschema.Draft202012Validator(
    json.loads((REPO / "schemas" / "event.schema.json").read_text(encoding="utf-8"))
)


# --- signing: what the provider would send --------------------------------------------------


def _timestamp(headers: dict[str, str], name: str) -> str:
    return headers.get(name) or str(int(NOW.timestamp()))


def sign(source: str, headers: dict[str, str], body: bytes) -> None:
    """Add the headers that make `body` authentic for `source` (in place)."""
    if source == "github":
        digest = hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers["x-hub-signature-256"] = f"sha256={digest}"
    elif source == "notion":
        digest = hmac.new(NOTION_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers["x-notion-signature"] = f"sha256={digest}"
    elif source == "notion-automation":
        headers["x-switchboard-token"] = AUTOMATION_TOKEN
    elif source == "discord":
        stamp = _timestamp(headers, "x-signature-timestamp")
        headers["x-signature-timestamp"] = stamp
        signed = DISCORD_KEY.sign(stamp.encode("latin-1") + body)
        headers["x-signature-ed25519"] = signed.signature.hex()
    elif source == "slack":
        stamp = _timestamp(headers, "x-slack-request-timestamp")
        headers["x-slack-request-timestamp"] = stamp
        base = b"v0:" + stamp.encode("latin-1") + b":" + body
        digest = hmac.new(SLACK_SECRET.encode(), base, hashlib.sha256).hexdigest()
        headers["x-slack-signature"] = f"v0={digest}"
    elif source == "gcal":
        headers["x-goog-channel-token"] = GCAL_TOKEN


# --- the input format -----------------------------------------------------------------------


_CONTROL = bytes([*range(0x09), *range(0x0A, 0x20), 0x7F])


def decode(data: bytes) -> tuple[str, bool, dict[str, str], bytes]:
    """(source, sign?, headers as ingress hands them to a source, body)."""
    if len(data) < 4:
        data = data + b"\x00" * (4 - len(data))
    source = NAMES[data[0] % len(NAMES)]
    signed = bool(data[1] & 1)
    length = int.from_bytes(data[2:4], "big")
    blob, body = data[4 : 4 + length], data[4 + length :]
    headers: dict[str, str] = {}
    for line in blob.split(b"\n"):
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        # What an HTTP server lets through (h11, uvicorn's default, answers 400 to any
        # control byte but HTAB in a value): names lower case, values trimmed.
        clean = value.translate(None, _CONTROL).strip(b" \t")
        key = name.strip().lower().decode("latin-1")
        if key:
            headers[key] = clean.decode("latin-1")
    return source, signed, headers, body


def encode(source: str, headers: dict[str, str], body: bytes, *, signed: bool = True) -> bytes:
    """The inverse of `decode`, for the seed corpus."""
    blob = "\n".join(f"{k}:{v}" for k, v in headers.items()).encode("latin-1")
    return bytes([NAMES.index(source), int(signed)]) + len(blob).to_bytes(2, "big") + blob + body


# --- the target -------------------------------------------------------------------------------


def check_events(source: str, events: object) -> None:
    """What the worker does next with the events: it must be able to."""
    if not isinstance(events, list) or not all(isinstance(e, Event) for e in events):
        raise TypeError(f"{source}.normalize returned {type(events).__name__}, not list[Event]")
    for event in events:
        doc = event.to_dict()
        errors = sorted(VALIDATOR.iter_errors(doc), key=str)
        if errors:
            raise AssertionError(
                f"{source}: normalized event is not a valid CloudEvent: "
                + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:3])
            )
        json.dumps(doc, allow_nan=False)  # stored as JSON


def run_input(data: bytes) -> str:
    """verify, then (if stored) normalize, as ingress and the worker would; the stage
    reached: refused, protocol (answered, not stored), malformed or events."""
    name, signed, headers, body = decode(data)
    source = SOURCES[name]
    path = headers.pop(FUZZ_PATH, None)
    headers.pop(PATH_HEADER, None)  # only ingress sets it, from the URL
    if signed:
        sign(name, headers, body)
    secret = Secret(SECRETS[name], origin="fuzz") if name in SECRETS else None
    request = HookRequest(source=name, headers=headers, body=body, received_at=NOW)
    try:
        verdict = source.verify(request, secret, CLOCK)
    except RequestRejected:
        return "refused"
    if not verdict.store:
        return "protocol"
    stored = {k: v for k, v in headers.items() if k not in DROPPED}
    if path:
        stored[PATH_HEADER] = path[:200]
    raw = RawEvent(
        id=event_id_for(name, verdict.provider_delivery_id),
        source=name,
        provider_delivery_id=verdict.provider_delivery_id,
        headers=stored,
        body=body,
        received_at=NOW,
    )
    try:
        events = source.normalize(raw, NormalizeContext(clock=CLOCK))
    except MalformedPayload:
        return "malformed"
    check_events(name, events)
    return "events"


def test_one_input(data: bytes) -> None:
    """The fuzz target: anything `run_input` raises is a crash."""
    run_input(data)


def seed_report() -> dict[str, dict[str, int]]:
    """How far each source's seeds get: a seed that is refused teaches the fuzzer little."""
    report: dict[str, dict[str, int]] = {}
    for data in seeds():
        stage = run_input(data)
        counts = report.setdefault(decode(data)[0], {})
        counts[stage] = counts.get(stage, 0) + 1
    return report


# --- seeds from the real fixtures ----------------------------------------------------------


def _json(path: Path) -> bytes:
    return path.read_bytes()


def seeds() -> Iterator[bytes]:
    """Real provider payloads, each as the input that signs and sends it."""
    json_type = {"content-type": "application/json"}
    github = FIXTURES / "github"
    for folder in sorted(p for p in github.iterdir() if p.is_dir()):
        for n, path in enumerate(sorted(folder.glob("*.json"))[:2]):
            headers = {**json_type, "x-github-event": folder.name, "x-github-delivery": f"d{n}"}
            yield encode("github", headers, _json(path))
    for path in sorted((FIXTURES / "notion" / "webhooks").glob("*.json")):
        yield encode("notion", json_type, _json(path), signed=path.name != "verification.json")
    for path in sorted((FIXTURES / "notion" / "automation").glob("*.json")):
        yield encode("notion-automation", {**json_type, FUZZ_PATH: "task-done"}, _json(path))
    for path in sorted((FIXTURES / "discord").glob("interaction.*.json")):
        if "response" not in path.name:
            yield encode("discord", json_type, _json(path))
    form = {"content-type": "application/x-www-form-urlencoded"}
    for name in ("slash-command.body.txt", "block_actions.body.txt"):
        yield encode("slack", form, (FIXTURES / "slack" / name).read_bytes())
    yield encode("slack", json_type, _json(FIXTURES / "slack" / "url_verification.json"))
    yield encode("slack", form, urllib.parse.urlencode({"ssl_check": "1"}).encode(), signed=False)
    for path in sorted((FIXTURES / "gcal" / "push").glob("*.headers.json")):
        headers = {k.lower(): str(v) for k, v in json.loads(path.read_bytes()).items()}
        headers.pop("x-goog-channel-token", None)
        yield encode("gcal", headers, b"")
    yield encode("schedule", json_type, b'{"rule": "daily", "tick": "2026-11-21T10:00:00Z"}')


def seed_corpus() -> Path:
    """The seeds, written once per seed set to a shared directory under the temp dir.

    Named after a digest of the seeds, so concurrent runs share it and nothing piles up;
    libFuzzer only reads it (what it finds goes to the first corpus directory).
    """
    data = list(seeds())
    digest = hashlib.sha256(b"".join(hashlib.sha256(d).digest() for d in data)).hexdigest()
    final = Path(tempfile.gettempdir()) / f"switchboard-atheris-seeds-{digest[:16]}"
    if final.is_dir():
        return final
    staging = Path(tempfile.mkdtemp(prefix=f"{final.name}-", dir=final.parent))
    for item in data:
        (staging / hashlib.sha1(item, usedforsecurity=False).hexdigest()).write_bytes(item)
    try:
        staging.rename(final)
    except OSError:  # another run wrote it first
        shutil.rmtree(staging, ignore_errors=True)
    return final


def main(argv: list[str], run: Callable[[], None] = atheris.Fuzz) -> None:
    """libFuzzer's command line, plus the seed corpus unless inputs are being replayed.

    Corpus directories given on the command line come first (libFuzzer writes what it
    finds into the first one) and the seeds are added after them; with none, a fresh
    directory under the temp dir takes the finds and any crash-* artifact.
    Files on the command line are replayed as they are (`... crash-<sha1>`).
    """
    args = list(argv)
    if "--seed-report" in args:
        print(json.dumps(seed_report(), sort_keys=True))
        return
    inputs = [a for a in args[1:] if not a.startswith("-")]
    if not any(Path(a).is_file() for a in inputs):
        if not inputs:
            work = Path(tempfile.mkdtemp(prefix="switchboard-atheris-"))
            (work / "corpus").mkdir()
            args.append(str(work / "corpus"))
            if not any(a.startswith("-artifact_prefix=") for a in args):
                args.append(f"-artifact_prefix={work}/")
            print(f"atheris: new inputs and crash artifacts go to {work}", flush=True)
        args.append(str(seed_corpus()))
    if not any(a.startswith("-max_len=") for a in args):
        args.append("-max_len=65536")  # the fuzz hub's body cap; big fixtures still fit
    atheris.Setup(args, test_one_input)
    run()


if __name__ == "__main__":
    main(sys.argv)
