"""`switchboard intake FILE --into NAME`: the CLI door of the task intake.

It prints the preview, then (unless --dry-run) stores the new tasks as the endpoint does.
Embedded mode has no broker this process can reach: the events are stored "one lease
ago", so the running hub's sweeper picks them up (as `switchboard replay` does).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hub.clock import SystemClock
from hub.config import Settings
from hub.errors import ConfigError
from hub.plugins import Plugins
from hub.rules.templates import TemplateEngine
from hub.runtime import load_rules
from hub.sources.intake import NAME as INTAKE_SOURCE
from hub.tasks.intake import has_intake, intake_names, preview_lines, submit_tasks
from hub.tasks.lists import FORMATS, ListError, detect_format, parse_task_list

SettingsLoader = Callable[[argparse.Namespace], tuple[Settings, Plugins]]


def add_intake_command(sub: Any, settings: SettingsLoader, path_type: Any) -> None:
    """Register `intake` on the CLI's subparsers; `settings` loads config and plugins."""
    intake = sub.add_parser("intake", help="send a task list (markdown, YAML, JSON, text)")
    intake.add_argument("file", type=path_type, help="the task list")
    intake.add_argument("--into", required=True, help="intake name (a rule on intake.<name>)")
    intake.add_argument("--format", choices=FORMATS, help="default: from the file name or text")
    intake.add_argument("--dry-run", action="store_true", help="show the preview, store nothing")
    intake.set_defaults(run=lambda args: run_intake(args, settings))


def run_intake(args: argparse.Namespace, load: SettingsLoader) -> int:
    from hub.store import open_store

    settings, plugins = load(args)
    if INTAKE_SOURCE not in settings.sources:
        raise ConfigError(
            "the task intake is off", hint="add `intake: {}` under sources: in switchboard.yaml"
        )
    ruleset = load_rules(settings, plugins, TemplateEngine()).ruleset
    if not has_intake(ruleset, args.into):
        raise ConfigError(
            f"no intake '{args.into}': no rule listens on intake.{args.into}",
            hint=f"intakes: {', '.join(intake_names(ruleset)) or 'none'}; "
            "add a rule with `on: intake.<name>` (docs/rules.md, Task intake)",
        )
    path = Path(args.file)
    text = path.read_text(encoding="utf-8")
    try:
        task_list = parse_task_list(text, detect_format(text, hint=args.format or path.name))
    except ListError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    now = SystemClock().now().timestamp()
    store = open_store(settings.database_url)
    try:
        preview = submit_tasks(store, args.into, task_list, received_at=now, dry_run=True)
        for line in preview_lines(preview):
            print(line)
        if args.dry_run:
            print(f"dry run: {len(preview.new_event_ids)} new tasks would be sent")
            return 0
        lease = settings.worker.lease_seconds
        at = now - lease - 1 if settings.is_embedded else now
        result = submit_tasks(store, args.into, task_list, received_at=at, dry_run=False)
    finally:
        store.close()
    if result.new_event_ids and not settings.is_embedded:
        from hub.pipeline.queue import Queue, make_broker

        queue = Queue(make_broker(settings.broker_url, namespace=settings.broker_namespace))
        queue.enqueue_events(result.new_event_ids)
        queue.close()
    pickup = f"; the running hub picks them up within {lease / 4:.0f}s"
    print(
        f"sent {len(result.new_event_ids)} new tasks to intake '{args.into}' "
        f"({len(result.event_ids) - len(result.new_event_ids)} already sent, "
        f"{len(task_list.rejected)} lines rejected)" + (pickup if settings.is_embedded else "")
    )
    return 0
