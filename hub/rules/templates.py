"""Jinja2 templates for rules, sandboxed; the only module that imports Jinja2.

Only rule text is ever compiled. Event data reaches templates as values in the
context, so a Notion title of `{{ 7*7 }}` renders literally (no template injection).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["CompiledExpression", "CompiledValue", "TemplateEngine", "TemplateProblem"]


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

    def render(self, context: Mapping[str, Any]) -> Any:
        return _render(self.tree, context)


@dataclass(frozen=True, slots=True)
class _Compiled:
    template: Any
    source: str


@dataclass(frozen=True, slots=True)
class CompiledExpression:
    """A `when:` expression; truthiness of its value decides."""

    expression: Any
    source: str

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

    def compile_value(self, value: Any) -> CompiledValue:
        return CompiledValue(self._compile(value))

    def compile_expression(self, text: str) -> CompiledExpression:
        inner = text.strip()
        if inner.startswith("{{") and inner.endswith("}}"):
            inner = inner[2:-2].strip()
        try:
            return CompiledExpression(self.env.compile_expression(inner), text)
        except TemplateSyntaxError as exc:
            raise TemplateProblem(f"invalid expression: {exc.message}", exc.lineno) from exc

    def undeclared_names(self, value: Any) -> set[str]:
        """Top-level names a template string (or tree of them) uses, e.g. {"event"}."""
        if isinstance(value, str):
            if "{{" not in value and "{%" not in value:
                return set()
            try:
                return set(meta.find_undeclared_variables(self.env.parse(value)))
            except TemplateSyntaxError:
                return set()  # reported by compile_value
        if isinstance(value, Mapping):
            return set().union(*(self.undeclared_names(v) for v in value.values()))
        if isinstance(value, list):
            return set().union(*(self.undeclared_names(v) for v in value))
        return set()

    def _compile(self, value: Any) -> Any:
        if isinstance(value, str):
            if "{{" not in value and "{%" not in value and "{#" not in value:
                return value
            try:
                return _Compiled(self.env.from_string(value), value)
            except TemplateSyntaxError as exc:
                raise TemplateProblem(f"invalid template: {exc.message}", exc.lineno) from exc
        if isinstance(value, Mapping):
            return {str(k): self._compile(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._compile(v) for v in value]
        return value


def _render(tree: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(tree, _Compiled):
        try:
            return tree.template.render(context)
        except (UndefinedError, SecurityError, TypeError, ValueError, ArithmeticError) as exc:
            raise TemplateProblem(f"template {tree.source!r} failed: {exc}") from exc
    if isinstance(tree, dict):
        return {k: _render(v, context) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_render(v, context) for v in tree]
    return tree
