"""Template filters for chat commands: the same rule reads Discord and Slack commands.

Discord sends a command's values as named options (`task:TASK-41`, a USER option as the
user id); Slack sends one line of words (`TASK-41 @ada`), with `key:value` words also
given as options. `command_args` gives both as one mapping, so `/task assign` is one rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["COMMAND_FILTERS", "command_args", "option_named"]


def command_args(fields: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """`{{ event.data.fields | command_args('task', 'status') }}` → {task, status, ...}.

    Each name takes its named option, else the next free word (after the subcommand);
    the last name takes every word left (`/task new Write launch post`). Every option
    is kept too (`due`, `assignee`). A name with nothing is "".
    """
    args = [str(a) for a in fields.get("args") or []]
    options = fields.get("options") if isinstance(fields.get("options"), Mapping) else {}
    words = [a for a in args[1:] if not _is_option(a)] if args else []
    out: dict[str, Any] = {str(k): v for k, v in (options or {}).items()}
    for position, name in enumerate(names):
        if out.get(name) not in (None, ""):
            continue
        if position == len(names) - 1:
            out[name] = " ".join(words)
            words = []
        else:
            out[name] = words.pop(0) if words else ""
    for name in names:
        out.setdefault(name, "")
    return out


def option_named(options: Iterable[Any], text: Any) -> str:
    """The option (`{name}` items of a `notion.query` with `options:`) that `text` names,
    in any case; "" when none does."""
    wanted = str(text or "").strip().lower()
    for option in options or []:
        name = option.get("name") if isinstance(option, Mapping) else option
        if wanted and str(name).lower() == wanted:
            return str(name)
    return ""


def _is_option(word: str) -> bool:
    key, sep, _ = word.partition(":")
    return bool(sep) and key.isidentifier() and not word.startswith("<")


COMMAND_FILTERS = {"command_args": command_args, "option_named": option_named}
