"""The `switchboard` command: serve, worker, sign, rules check."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from hub.cli import admin, deliveries, processes, rules, sign, store
from hub.cli.common import DEFAULT_CONFIG, Tools, _settings, existing_path
from hub.cli.processes import _scheduler, _serve, _worker, uvicorn_options
from hub.errors import ConfigError, PluginError, StoreError, SwitchboardError, UsageError
from hub.plugins import Plugins, load_plugins
from hub.tasks.cli import add_intake_command

__all__ = [
    "DEFAULT_CONFIG",
    "_parser",
    "_scheduler",
    "_serve",
    "_worker",
    "existing_path",
    "main",
    "uvicorn_options",
]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; bad input gets one line saying what to do, never a traceback."""
    parser = _parser()
    args = parser.parse_args(argv)  # usage errors: argparse prints usage and exits 2
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        code: int = args.run(args)
    except (ConfigError, PluginError, StoreError) as exc:
        text = str(exc)
        sep = "\n" if "\n" in text else " "  # several errors: one per line, under the header
        print(f"switchboard: error:{sep}{text}", file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    except SwitchboardError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        if exc.filename is None:
            raise
        # A file named on the command line (or in the config) that cannot be read.
        print(f"switchboard: {exc.filename}: {exc.strerror}; check the path", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("switchboard: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line; the traceback only when asked for
        if os.environ.get("SWITCHBOARD_TRACEBACK"):
            raise
        print(
            f"switchboard: unexpected {type(exc).__name__}: {exc} (a bug: please report it; "
            "SWITCHBOARD_TRACEBACK=1 shows where)",
            file=sys.stderr,
        )
        return 1
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchboard", description=__doc__)
    parser.add_argument(
        "--config",
        "-c",
        default=os.environ.get("SWITCHBOARD_CONFIG", DEFAULT_CONFIG),
        help="path to switchboard.yaml (env SWITCHBOARD_CONFIG)",
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        default="INFO",
    )
    parser.add_argument(
        "--log-format",
        choices=("console", "json"),
        default=os.environ.get("SWITCHBOARD_LOG_FORMAT", "console"),
        help="console for people, json for log shippers (env SWITCHBOARD_LOG_FORMAT)",
    )
    # `blocks=True` marks commands that wait (a server, a browser) once their input is good.
    sub = parser.add_subparsers(title="commands")
    plugins = _plugins()
    processes.add_commands(sub)
    sign.add_commands(sub, plugins.sources if plugins else ("github",))
    rules.add_commands(sub)
    deliveries.add_replay_command(sub)
    add_intake_command(sub, _settings, existing_path)
    rules.add_simulate_command(sub)
    deliveries.add_prune_command(sub)
    store.add_commands(sub)
    admin.add_commands(sub)
    if plugins is not None:
        _add_plugin_commands(sub, plugins)
    return parser


def _plugins() -> Plugins | None:
    """The installed plugins, or None when one is broken: the command run then loads them
    again and reports the broken one in its one line."""
    try:
        return load_plugins()
    except PluginError:
        return None


def _add_plugin_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], plugins: Plugins
) -> None:
    """The provider helpers the sources and connectors contribute (`cli_commands()`)."""
    tools = Tools()
    taken = set(sub.choices)
    contributed = [
        *(command for cls in plugins.sources.values() for command in cls.cli_commands()),
        *(command for con in plugins.connectors.values() for command in con.cli_commands()),
    ]
    for command in contributed:
        if command.name in taken:
            # A built-in command keeps its name; of two plugins, the first registered wins.
            continue
        taken.add(command.name)
        command.build(sub.add_parser(command.name, help=command.help), tools)
