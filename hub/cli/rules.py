"""The rules tools: `rules check`, `rules test` and the `simulate` dry run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hub.cli.common import _header, _settings, existing_path
from hub.errors import ConfigError, UsageError
from hub.rules.categories import train_categories
from hub.rules.templates import TemplateEngine
from hub.runtime import load_rules


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rules = sub.add_parser("rules", help="work with rule files")
    rules_sub = rules.add_subparsers(title="rules commands")
    check = rules_sub.add_parser("check", help="validate rule files; exit 1 on any error")
    check.add_argument(
        "path", nargs="?", type=existing_path, help="file or directory (default: config)"
    )
    check.set_defaults(run=_rules_check)
    test = rules_sub.add_parser("test", help="run the `tests:` cases of rule files")
    test.add_argument("path", nargs="?", type=existing_path)
    test.set_defaults(run=_rules_test)


def add_simulate_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    simulate = sub.add_parser("simulate", help="dry run: which rules match, what would be sent")
    simulate.add_argument("event", type=existing_path, help="a normalized event, or a raw payload")
    simulate.add_argument("--source", help="treat the file as a raw payload of this source")
    simulate.add_argument(
        "--header",
        "-H",
        action="append",
        default=[],
        type=_header,
        help="'Name: value' header for a raw payload (repeatable)",
    )
    simulate.set_defaults(run=_simulate)


def _rules_check(args: argparse.Namespace) -> int:
    settings, plugins = _settings(args, require_secrets=False)
    result = load_rules(settings, plugins, TemplateEngine(), args.path)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"ok: {len(result.ruleset.rules)} rules in {len(result.ruleset.files)} files"
        + (f", {len(result.warnings)} warnings" if result.warnings else "")
    )
    return 0


def _rules_test(args: argparse.Namespace) -> int:
    from hub.clock import SystemClock
    from hub.rules.testing import run_rule_tests

    settings, plugins = _settings(args, require_secrets=False)
    result = load_rules(settings, plugins, TemplateEngine(), args.path)
    sources = {name: cls() for name, cls in plugins.sources.items()}
    cases = run_rule_tests(
        result.ruleset,
        result.documents,
        sources=sources,
        clock=SystemClock(),
        categories=train_categories(settings.categories),
    )
    failed = [c for c in cases if not c.passed]
    for case in cases:
        print(f"{'ok  ' if case.passed else 'FAIL'} {case.location}: {case.name}")
        if case.diff:
            print("\n".join("     " + line for line in case.diff.splitlines()))
    print(f"{len(cases) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def _simulate(args: argparse.Namespace) -> int:
    import json

    from hub.clock import SystemClock
    from hub.rules.testing import dry_run, normalize_payload

    settings, plugins = _settings(args, require_secrets=False)
    ruleset = load_rules(settings, plugins, TemplateEngine()).ruleset
    categories = train_categories(settings.categories)
    body = args.event.read_bytes()
    if args.source:
        source_cls = plugins.sources.get(args.source)
        if source_cls is None:
            raise ConfigError(
                f"unknown source '{args.source}'",
                hint=f"installed: {', '.join(sorted(plugins.sources))}",
            )
        headers = dict(h.split(":", 1) for h in args.header)
        try:
            events = normalize_payload(
                source_cls(),
                body,
                {k.strip(): v.strip() for k, v in headers.items()},
                SystemClock(),
            )
        except Exception as exc:  # the normalizer's complaint is the answer to a dry run
            hint = "; pass the provider's headers with -H 'Name: value'"
            raise UsageError(
                f"the {args.source} source could not read {args.event}: {_reason(exc)}"
                + (hint if isinstance(exc, KeyError) else "")
            ) from exc
    else:
        event = _normalized_event(body, args.event, sorted(plugins.sources))
        if event is None:
            return 2
        events = [event]
    for event in events:
        shown = {**event, "data": {**event.get("data", {}), "raw": "…"}}
        print("event:", json.dumps(shown, indent=2, ensure_ascii=False))
        for verdict in dry_run(ruleset, event, categories=categories):
            if verdict.matched:
                print(f"MATCH {verdict.rule_id}")
                for action in verdict.actions:
                    print("   would send:", json.dumps(action, ensure_ascii=False))
            else:
                print(f"  no  {verdict.rule_id}: {verdict.reason}")
    print("(dry run: nothing was sent)")
    return 0


def _reason(exc: Exception) -> str:
    """One line for a normalizer's exception; a KeyError is usually a missing header."""
    if isinstance(exc, KeyError) and str(exc.args[0]).lower().startswith("x-"):
        return f"header {exc.args[0]} is missing"
    return f"{type(exc).__name__}: {exc}"


def _normalized_event(body: bytes, path: Path, sources: list[str]) -> dict[str, Any] | None:
    """The file as a normalized event, or None after saying why it is not one (exit 2).

    A raw webhook body read as an event matches nothing and prints hundreds of lines; the
    dashboard refuses it the same way.
    """
    import json

    try:
        event = json.loads(body)
    except ValueError as exc:
        print(f"switchboard: {path}: not JSON: {exc}", file=sys.stderr)
        return None
    # A raw body can carry a `type` of its own (Notion's `page.created`, Discord's 1):
    # a normalized event also names its `source` (CloudEvents).
    if isinstance(event, dict) and isinstance(event.get("type"), str) and "source" in event:
        return event
    print(
        f"switchboard: {path}: without --source, payload must be a normalized event "
        "(an object with 'type' and 'source')\n"
        f"  for a raw webhook body, name its source and headers: "
        f"switchboard simulate {path} --source SOURCE -H 'Name: value'\n"
        f"  e.g. --source github -H 'X-GitHub-Event: issues'; "
        f"installed sources: {', '.join(sources) or 'none'}",
        file=sys.stderr,
    )
    return None
