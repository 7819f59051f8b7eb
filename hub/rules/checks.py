"""Semantic checks of one rule at a time; every error is collected, none stops the check."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from connectors.base import Connector, Destination, parse_duration
from hub.config.people import Directory
from hub.errors import ConfigError, RuleError
from hub.rules.addressing import split_addressing
from hub.rules.conditions import Condition, compile_condition
from hub.rules.model import (
    ActionSpec,
    Grouping,
    QuerySpec,
    Rule,
    Window,
)
from hub.rules.recurrence import Recurrence, parse_recurrence
from hub.rules.schedule import DEFAULT_TIMEZONE, Schedule, ScheduleProblem, parse_schedule
from hub.rules.templates import TemplateEngine, TemplateProblem
from hub.validation import schema_errors
from hub.yamldoc import PathKey, YamlDocument

TEMPLATE_NAMES = frozenset({"event", "rule"})
GROUP_TEMPLATE_NAMES = frozenset({"event", "rule", "events", "group"})

#: Prefix of the event type a `schedule:` rule fires on: `schedule.<rule id>`.
SCHEDULE_EVENT_PREFIX = "schedule."

#: Rule ids that make a valid event type after the prefix (no empty dotted segments).
_SCHEDULABLE_ID = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")


class RuleChecker:
    """Semantic checks of one rule at a time; collects errors instead of stopping."""

    def __init__(
        self,
        connectors: Mapping[str, type[Connector]],
        destinations: Mapping[str, Destination],
        engine: TemplateEngine,
        templates: Mapping[str, Any],
        people: Directory,
    ) -> None:
        self.people = people
        self.connectors = connectors
        self.destinations = destinations
        self.engine = engine
        self.templates = templates
        self.errors: list[ConfigError] = []

    def _error(self, doc: YamlDocument, at: PathKey, message: str, hint: str = "") -> None:
        self.errors.append(RuleError(message, location=doc.locate(at), hint=hint))

    def rule(self, doc: YamlDocument, at: PathKey, raw: dict[str, Any]) -> Rule | None:
        before = len(self.errors)
        where: list[Condition] = []
        for path, spec in (raw.get("where") or {}).items():
            try:
                where.append(compile_condition(path, spec))
            except ValueError as exc:
                self._error(doc, (*at, "where", path), f"where '{path}': {exc}")
        when = None
        if "when" in raw:
            try:
                when = self.engine.compile_expression(raw["when"])
                if when_names := when.names - TEMPLATE_NAMES:
                    self._undefined(doc, (*at, "when"), set(when_names), TEMPLATE_NAMES)
            except TemplateProblem as exc:
                self._error(doc, (*at, "when"), f"when: {exc.message}")
        throttle = self._window(doc, (*at, "throttle"), raw.get("throttle"), "per")
        dedupe = self._window(doc, (*at, "dedupe"), raw.get("dedupe"), "window")
        group = self._group(doc, (*at, "group"), raw.get("group"))
        names = GROUP_TEMPLATE_NAMES if group is not None else TEMPLATE_NAMES
        queries = self._queries(doc, (*at, "query"), raw.get("query") or {})
        if queries:
            names = names | {"query"}
        actions = [
            spec
            for index, action in enumerate(raw["actions"])
            if (spec := self._action(doc, (*at, "actions", index), index, action, names))
        ]
        schedule = self._schedule(doc, at, raw)
        if len(self.errors) > before:
            return None
        on = [SCHEDULE_EVENT_PREFIX + raw["id"]] if schedule is not None else raw["on"]
        missed = str((raw.get("recurrence") or {}).get("missed", "latest"))
        sources = raw.get("source", [])
        return Rule(
            id=raw["id"],
            description=raw.get("description", ""),
            on=tuple(on) if isinstance(on, list) else (on,),
            sources=tuple(sources) if isinstance(sources, list) else (sources,),
            where=tuple(where),
            when=when,
            actions=tuple(actions),
            location=doc.locate(at),
            stop=raw.get("continue", True) is False,
            throttle=throttle,
            dedupe=dedupe,
            group=group,
            schedule=schedule,
            missed=missed,
            queries=tuple(queries),
            people=self.people,
        )

    def _queries(self, doc: YamlDocument, at: PathKey, raw: Mapping[str, Any]) -> list[QuerySpec]:
        """`query: {name: {<provider>.query: params}}`; params are templates over `event`."""
        out = []
        for name, step in raw.items():
            key, params = next(iter(step.items()))
            try:
                compiled = self.engine.compile_value(params)
            except TemplateProblem as exc:
                self._error(doc, (*at, name, key), exc.message)
                continue
            if undefined := compiled.names - TEMPLATE_NAMES:
                self._undefined(doc, (*at, name, key), set(undefined), TEMPLATE_NAMES)
            out.append(
                QuerySpec(
                    name=str(name),
                    provider=key.removesuffix(".query"),
                    params=compiled,
                    location=doc.locate((*at, name)),
                )
            )
        return out

    def _schedule(
        self, doc: YamlDocument, at: PathKey, raw: dict[str, Any]
    ) -> Schedule | Recurrence | None:
        """`schedule:` or `recurrence:` (+ `timezone:`) instead of `on:`; exactly one."""
        rule_id = raw["id"]
        if "recurrence" in raw:
            if "schedule" in raw:
                self._error(
                    doc,
                    (*at, "recurrence"),
                    f"rule '{rule_id}' has both `schedule:` and `recurrence:`",
                    hint="keep one: a recurrence takes `cron:` or `rrule:` itself",
                )
                return None
            recurrence = raw["recurrence"]
            raw = {**raw, "schedule": recurrence.get("cron") or recurrence.get("rrule")}
        if "schedule" not in raw:
            if "on" not in raw:
                self._error(
                    doc,
                    at,
                    f"rule '{rule_id}' needs `on:` (event types) or `schedule:` (cron)",
                    hint='e.g. on: github.issues.opened, or schedule: "0 9 * * MON-FRI"',
                )
            if "timezone" in raw:
                self._error(
                    doc,
                    (*at, "timezone"),
                    "`timezone:` applies only to rules with `schedule:`",
                    hint='remove it, or add schedule: "0 9 * * MON-FRI"',
                )
            return None
        if "on" in raw:
            self._error(
                doc,
                (*at, "on"),
                f"rule '{rule_id}' has both `on:` and `schedule:`",
                hint=f"remove `on:`: a scheduled rule fires on its own "
                f"'{SCHEDULE_EVENT_PREFIX}{rule_id}' events; write another rule for other events",
            )
            return None
        if not _SCHEDULABLE_ID.fullmatch(rule_id):
            self._error(
                doc,
                (*at, "id"),
                f"rule id '{rule_id}' cannot name a schedule event type",
                hint="a scheduled rule's id needs letters, digits, _ or - between single dots",
            )
            return None
        zone = raw.get("timezone", DEFAULT_TIMEZONE)
        recurrence = raw.get("recurrence") or {}
        try:
            if "rrule" in recurrence:
                return parse_recurrence(recurrence["rrule"], zone, recurrence.get("start"))
            return parse_schedule(raw["schedule"], zone)
        except ScheduleProblem as exc:
            key = exc.key if exc.key == "timezone" or not recurrence else "recurrence"
            self._error(doc, (*at, key), str(exc))
            return None

    def _undefined(
        self, doc: YamlDocument, at: PathKey, names: set[str], allowed: frozenset[str]
    ) -> None:
        self._error(
            doc,
            at,
            f"undefined name{'s' if len(names) > 1 else ''} {', '.join(sorted(names))} in template",
            hint=f"templates can use: {', '.join(sorted(allowed))}",
        )

    def _duration(self, doc: YamlDocument, at: PathKey, value: Any) -> Any:
        try:
            return parse_duration(value)
        except ValueError as exc:
            self._error(doc, at, str(exc))
            return None

    def _key(self, doc: YamlDocument, at: PathKey, text: str) -> Any:
        try:
            compiled = self.engine.compile_value(text)
        except TemplateProblem as exc:
            self._error(doc, at, exc.message)
            return None
        if names := compiled.names - TEMPLATE_NAMES:
            self._undefined(doc, at, set(names), TEMPLATE_NAMES)
        return compiled

    def _window(self, doc: YamlDocument, at: PathKey, raw: Any, length: str) -> Window | None:
        if raw is None:
            return None
        per = self._duration(doc, (*at, length), raw[length])
        key = self._key(doc, (*at, "key"), raw.get("key", "{{ event.subject }}"))
        if per is None or key is None:
            return None
        return Window(key=key, per=per, limit=int(raw.get("limit", 1)))

    def _group(self, doc: YamlDocument, at: PathKey, raw: Any) -> Grouping | None:
        if raw is None:
            return None
        window = self._duration(doc, (*at, "window"), raw["window"])
        key = self._key(doc, (*at, "key"), raw.get("key", "all"))
        if window is None or key is None:
            return None
        return Grouping(key=key, window=window, max_events=int(raw.get("max_events", 100)))

    def _action(
        self,
        doc: YamlDocument,
        at: PathKey,
        index: int,
        action: dict[str, Any],
        names: frozenset[str],
    ) -> ActionSpec | None:
        key, params = next(iter(action.items()))
        params = dict(params or {})
        name, _, operation = key.partition(".")
        if "use" in params:
            template = self.templates.get(str(params["use"]))
            if template is None:
                self._error(
                    doc,
                    (*at, key, "use"),
                    f"template '{params['use']}' is not defined",
                    hint=f"defined templates: {', '.join(sorted(self.templates)) or 'none'}",
                )
                return None
            params = _merge(template, {k: v for k, v in params.items() if k != "use"})
        connector = self.connectors.get(name)
        if connector is None:
            self._error(
                doc,
                (*at, key),
                f"unknown connector '{name}'",
                hint=f"installed connectors: {', '.join(sorted(self.connectors))}",
            )
            return None
        before = len(self.errors)
        params, addressing = split_addressing(params)
        checked = addressing.check(
            doc, (*at, key), name, connector, self.engine, self.people, names, self.errors
        )
        self.errors += schema_errors(
            doc, connector.params_schema, at=(*at, key), value=checked.for_schema(params)
        )
        destination = self._destination(doc, (*at, key), name, connector, params)
        try:
            compiled = self.engine.compile_value(params)
        except TemplateProblem as exc:
            self._error(doc, (*at, key), exc.message)
            return None
        action_names = names | checked.names
        if undefined := compiled.names - action_names:
            self._undefined(doc, (*at, key), set(undefined), action_names)
        if len(self.errors) > before:
            return None
        return ActionSpec(
            index=index,
            connector=name,
            operation=operation or None,
            destination=destination,
            params=compiled,
            location=doc.locate((*at, key)),
            for_each=checked.for_each,
            for_each_as=checked.for_each_as,
            to=checked.to,
            address=checked.address,
        )

    def _destination(
        self,
        doc: YamlDocument,
        at: PathKey,
        name: str,
        connector: type[Connector],
        params: Mapping[str, Any],
    ) -> str | None:
        if connector.destination_param is None:
            return None
        destination = params.get(connector.destination_param)
        if not isinstance(destination, str):
            return None
        dest = self.destinations.get(destination)
        where = (*at, connector.destination_param)
        if dest is None:
            known = sorted(n for n, d in self.destinations.items() if d.connector == name)
            self._error(
                doc,
                where,
                f"destination '{destination}' is not defined",
                hint=f"known {name} destinations: {', '.join(known) or 'none'}"
                " (define it under destinations: in switchboard.yaml)",
            )
        elif dest.connector != name:
            self._error(
                doc,
                where,
                f"destination '{destination}' is a {dest.connector} destination, not {name}",
            )
        return destination


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge for `use:`: mappings merge, anything else in `override` wins."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
