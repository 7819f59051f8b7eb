"""Jinja2 templates for rules, sandboxed; the only module that imports Jinja2.

Only rule text is ever compiled. Event data reaches templates as values in the
context, so a Notion title of `{{ 7*7 }}` renders literally (no template injection).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import (
    StrictUndefined,
    TemplateSyntaxError,
    Undefined,
    UndefinedError,
    nodes,
    pass_context,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hub.rules.command_filters import COMMAND_FILTERS
from hub.rules.digest import DIGEST_FILTERS
from hub.team.people import local_hour_is, mention, person_data, with_person

__all__ = ["EXPR_KEY", "CompiledExpression", "CompiledValue", "TemplateEngine", "TemplateProblem"]

#: `{$expr: "query.done | map(attribute='title') | list"}` renders to the value itself.
EXPR_KEY = "$expr"


class TemplateProblem(Exception):
    """A template failed to compile or render; `line` is relative to the template."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.message = message
        self.line = line
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class CompiledValue:
    """A params tree with every template string compiled once, at load time."""

    tree: Any
    #: Top-level names the templates use (e.g. {"event"}), for load-time checks.
    names: frozenset[str] = frozenset()

    def render(self, context: Mapping[str, Any]) -> Any:
        return _render(self.tree, context)


@dataclass(frozen=True, slots=True)
class _Compiled:
    template: Any
    source: str


@dataclass(frozen=True, slots=True)
class _Native:
    """`{$expr: "..."}`: the expression's value itself (a list, a number), not its text."""

    expression: Any
    source: str


@dataclass(frozen=True, slots=True)
class CompiledExpression:
    """A `when:` expression; truthiness of its value decides."""

    expression: Any
    source: str
    names: frozenset[str] = frozenset()

    def evaluate(self, context: Mapping[str, Any]) -> bool:
        try:
            return bool(self.expression(**context))
        except (UndefinedError, SecurityError, TypeError, ValueError, ArithmeticError) as exc:
            raise TemplateProblem(f"when expression {self.source!r} failed: {exc}") from exc


class TemplateEngine:
    """One sandboxed environment per process, passed to whoever compiles rules."""

    def __init__(self) -> None:
        self.env = ImmutableSandboxedEnvironment(
            undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
        )
        self.env.filters.update(DIGEST_FILTERS)
        self.env.filters.update(COMMAND_FILTERS)
        self.env.filters["mention"] = pass_context(mention)
        self.env.filters["person"] = pass_context(person_data)
        self.env.filters["with_person"] = pass_context(with_person)
        self.env.filters["local_hour_is"] = local_hour_is
        # Identical template text (shared `use:` templates) compiles once per engine.
        self._cache: dict[str, tuple[_Compiled, frozenset[str]]] = {}

    def compile_value(self, value: Any) -> CompiledValue:
        names: set[str] = set()
        return CompiledValue(self._compile(value, names), frozenset(names))

    def compile_expression(self, text: str) -> CompiledExpression:
        inner = text.strip()
        if inner.startswith("{{") and inner.endswith("}}"):
            inner = inner[2:-2].strip()
        try:
            names = _names(self.env.parse("{{ " + inner + " }}"))
            return CompiledExpression(self.env.compile_expression(inner), text, names)
        except TemplateSyntaxError as exc:
            raise TemplateProblem(f"invalid expression: {exc.message}", exc.lineno) from exc

    def _compile(self, value: Any, names: set[str]) -> Any:
        if isinstance(value, str):
            if "{{" not in value and "{%" not in value and "{#" not in value:
                return value
            cached = self._cache.get(value)
            if cached is None:
                try:
                    # Parse once: the same tree gives the names used and the compiled code.
                    tree = self.env.parse(value)
                    cached = (_Compiled(self.env.from_string(tree), value), _names(tree))
                except TemplateSyntaxError as exc:
                    raise TemplateProblem(f"invalid template: {exc.message}", exc.lineno) from exc
                self._cache[value] = cached
            names.update(cached[1])
            return cached[0]
        if isinstance(value, Mapping) and set(value) == {EXPR_KEY}:
            expression = self.compile_expression(str(value[EXPR_KEY]))
            names.update(expression.names)
            return _Native(expression.expression, expression.source)
        if isinstance(value, Mapping):
            return {str(k): self._compile(v, names) for k, v in value.items()}
        if isinstance(value, list):
            return [self._compile(v, names) for v in value]
        return value


def _names(tree: nodes.Template) -> frozenset[str]:
    """Names a template reads but never assigns (a cheap walk; Jinja's `meta` module
    generates code to find them, which costs more than compiling the template)."""
    loads: set[str] = set()
    stores: set[str] = set()
    for node in tree.find_all(nodes.Name):
        (loads if node.ctx == "load" else stores).add(node.name)
    return frozenset(loads - stores - _JINJA_NAMES)


#: Names Jinja itself provides inside templates (`loop` in a for, its default globals).
_JINJA_NAMES = frozenset(
    {
        "loop",
        "self",
        "caller",
        "varargs",
        "kwargs",
        "range",
        "dict",
        "lipsum",
        "cycler",
        "joiner",
        "namespace",
    }
)


def _render(tree: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(tree, _Compiled):
        try:
            return tree.template.render(context)
        except (UndefinedError, SecurityError, TypeError, ValueError, ArithmeticError) as exc:
            raise TemplateProblem(f"template {tree.source!r} failed: {exc}") from exc
    if isinstance(tree, _Native):
        try:
            return _plain(tree.expression(**context))
        except (UndefinedError, SecurityError, TypeError, ValueError, ArithmeticError) as exc:
            raise TemplateProblem(f"expression {tree.source!r} failed: {exc}") from exc
    if isinstance(tree, dict):
        return {k: _render(v, context) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_render(v, context) for v in tree]
    return tree


def _plain(value: Any) -> Any:
    """A JSON value: what a delivery's params can hold (generators from `map` are listed)."""
    if isinstance(value, Undefined):
        raise ValueError("the value is undefined")
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Iterable):
        return [_plain(v) for v in value]
    return str(value)
