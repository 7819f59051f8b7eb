"""The pipeline's hot statements on sqlite3's cursor, compiled once by SQLAlchemy.

Why: on SQLite a worker's batch statements (claim, finish, record) spent more CPU in
SQLAlchemy's execute path (parameter construction, the execution context, result rows)
than in SQLite, and they spend it inside the write transaction, where every other
writer of the file waits (docs/benchmarks.md). A `DriverStatement` compiles its
SQLAlchemy statement once per dialect into SQL text, the order of its positional
parameters, the constants SQLAlchemy would bind, and the type processors of its binds
and columns (JSON as the engine stores it); a call then only binds a tuple and runs it.
The statement stays the one definition, every other database runs it through
SQLAlchemy as before, and listeners of the engine's `before_cursor_execute` event still
see each statement.

Errors arrive as SQLAlchemy's (`DBAPIError.instance`), so the lock poll and `guard`
treat them as they treat any other statement's.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

__all__ = ["DriverStatement", "on_driver"]

Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Bind:
    """One positional parameter: a caller's value by name, or a constant of the statement."""

    name: str
    constant: bool
    value: Any  # the processed constant (a tuple when it expands to several)
    expanding: bool
    process: Processor | None


@dataclass(frozen=True, slots=True)
class _Plan:
    text: str  # the expanding caller parameter still as `__[POSTCOMPILE_name]`
    binds: tuple[_Bind, ...]
    expanding: str | None  # the caller's list parameter, if any
    columns: tuple[str, ...]
    results: tuple[Processor | None, ...]


class DriverStatement:
    """A statement run on the driver's cursor on SQLite, through SQLAlchemy elsewhere.

    Supported: bind parameters the caller names, constants (lists included) and at most
    one expanding caller parameter; an INSERT is compiled for `column_keys` (the keys of
    every row the caller passes). A statement outside that shape fails at its first
    compile, where a test meets it.
    """

    def __init__(self, statement: Executable, *, column_keys: Sequence[str] = ()) -> None:
        self.statement = statement
        self._column_keys = list(column_keys)
        self._plans: weakref.WeakKeyDictionary[Dialect, _Plan] = weakref.WeakKeyDictionary()

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The rows a SELECT or a RETURNING gives, as dicts by column name."""
        if not on_driver(conn):
            return [dict(r) for r in conn.execute(self.statement, dict(params)).mappings()]
        plan = self._plan(conn.dialect)
        cursor = self._cursor(conn)
        try:
            text, values = _bound(plan, params)
            _announce(conn, cursor, text, values, many=False)
            found = cursor.execute(text, values).fetchall()
        except sqlite3.Error as exc:
            raise DBAPIError.instance(plan.text, None, exc, sqlite3.Error) from exc
        finally:
            cursor.close()
        columns, results = plan.columns, plan.results
        if not any(results):
            return [dict(zip(columns, row, strict=True)) for row in found]
        return [
            {
                name: (value if process is None or value is None else process(value))
                for name, value, process in zip(columns, row, results, strict=True)
            }
            for row in found
        ]

    def run_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run it once per row of parameters (executemany)."""
        if not rows:
            return
        if not on_driver(conn):
            conn.execute(self.statement, [dict(r) for r in rows])
            return
        plan = self._plan(conn.dialect)
        if plan.expanding is not None:
            raise TypeError("run_many cannot expand a list parameter")
        if self._column_keys and rows[0].keys() != set(self._column_keys):
            raise TypeError(f"rows with columns {sorted(rows[0])}, compiled for others")
        cursor = self._cursor(conn)
        try:
            values = [_values(plan.binds, r) for r in rows]
            _announce(conn, cursor, plan.text, values, many=True)
            cursor.executemany(plan.text, values)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(plan.text, None, exc, sqlite3.Error) from exc
        finally:
            cursor.close()

    def _cursor(self, conn: Connection) -> Any:
        driver: Any = conn.connection.driver_connection
        return driver.cursor()

    def _plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect)
        if plan is None:
            plan = self._plans[dialect] = _compile(self.statement, dialect, self._column_keys)
        return plan


def on_driver(conn: Connection) -> bool:
    """Whether `conn`'s statements go to the driver's cursor (SQLite's, through sqlite3)."""
    return conn.dialect.name == "sqlite"


def _announce(conn: Connection, cursor: Any, text: str, values: Any, *, many: bool) -> None:
    """SQLAlchemy's `before_cursor_execute` event, as its own execute fires it, so what
    listens to the engine (statement counts, query plans in tests) sees these too."""
    hooks = conn.dispatch.before_cursor_execute
    if hooks:
        hooks(conn, cursor, text, values, None, many)


def _compile(statement: Executable, dialect: Dialect, column_keys: list[str]) -> _Plan:
    element: Any = statement  # every Executable here is a ClauseElement
    compiled: Any = element.compile(dialect=dialect, column_keys=column_keys or None)
    if compiled.positiontup is None:
        raise TypeError(f"{dialect.name} does not bind by position")
    text: str = compiled.string
    binds: list[_Bind] = []
    expanding: str | None = None
    for name in compiled.positiontup:
        param = compiled.binds[name]
        process = param.type.dialect_impl(dialect).bind_processor(dialect)
        constant = not name.startswith("b_") and name not in column_keys
        value = _insert_default(statement, name) if constant and column_keys else param.value
        if param.expanding and constant:
            # A fixed list (`status IN ('pending', 'sending')`): its placeholders, once.
            values = tuple(_processed(v, process) for v in value)
            text = text.replace(f"__[POSTCOMPILE_{name}]", ", ".join("?" * len(values)))
            binds.append(_Bind(name, True, values, True, None))
        elif param.expanding:
            if expanding is not None:
                raise TypeError("at most one list parameter per statement")
            expanding = name
            binds.append(_Bind(name, False, None, True, process))
        elif constant:
            binds.append(_Bind(name, True, _processed(value, process), False, None))
        else:
            binds.append(_Bind(name, False, None, False, process))
    columns: list[str] = []
    results: list[Processor | None] = []
    for entry in compiled._result_columns:  # (key, name, objects, type) per column
        columns.append(entry[0])
        results.append(entry[3].dialect_impl(dialect).result_processor(dialect, None))
    return _Plan(text, tuple(binds), expanding, tuple(columns), tuple(results))


def _insert_default(statement: Any, name: str) -> Any:
    """The scalar default of an INSERT's column the rows leave out (SQLAlchemy binds it
    at execution); a default computed per row has no place in a fixed plan."""
    default = statement.table.c[name].default
    if default is None or not default.is_scalar:
        raise TypeError(f"{name}: no scalar default for a column the rows leave out")
    return default.arg


def _processed(value: Any, process: Processor | None) -> Any:
    return value if process is None or value is None else process(value)


def _bound(plan: _Plan, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """The SQL text for these parameters (the list's placeholders) and its values."""
    text = plan.text
    values: list[Any] = []
    for bind in plan.binds:
        if bind.constant:
            if bind.expanding:
                values.extend(bind.value)
            else:
                values.append(bind.value)
        elif bind.expanding:
            items = list(params[bind.name])
            if not items:
                raise ValueError(f"{bind.name}: an empty list (the caller returns early)")
            text = text.replace(f"__[POSTCOMPILE_{bind.name}]", ", ".join("?" * len(items)))
            process = bind.process
            values.extend(items if process is None else [_processed(v, process) for v in items])
        else:
            values.append(_processed(params[bind.name], bind.process))
    return text, values


def _values(binds: tuple[_Bind, ...], params: Mapping[str, Any]) -> list[Any]:
    """One row's positional values (a plain loop: this runs per row of an executemany)."""
    out = []
    for bind in binds:
        if bind.constant:
            out.append(bind.value)
            continue
        value = params[bind.name]
        if value is not None and bind.process is not None:
            value = bind.process(value)
        out.append(value)
    return out
