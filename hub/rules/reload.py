"""Hot reload: watch the rule files, validate a changed set, swap it in whole or not at all.

A broken edit leaves the last good rule set routing; the error is kept on the
`RuleSetRef` (for the CLI, API and dashboard) and logged. Polling file stamps once a
second needs no extra dependency and works on every filesystem, including bind mounts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from hub.errors import ConfigError
from hub.rules.loader import RULE_FILE_SUFFIXES
from hub.rules.model import RuleSet, RuleSetRef

log = logging.getLogger("switchboard.rules")

Stamp = tuple[tuple[str, int, int], ...]


def stamp(path: Path) -> Stamp:
    """Names, sizes and mtimes of the rule files: any edit, add or delete changes it."""
    files = (
        [path]
        if path.is_file()
        else sorted(p for p in path.iterdir() if p.suffix in RULE_FILE_SUFFIXES)
        if path.is_dir()
        else []
    )
    out = []
    for file in files:
        try:
            info = file.stat()
        except OSError:
            continue
        out.append((file.name, info.st_size, info.st_mtime_ns))
    return tuple(out)


class RulesWatcher:
    """Reloads `ref` from `path` when the files change or `reload_now()` is called."""

    def __init__(
        self,
        ref: RuleSetRef,
        path: Path,
        load: Callable[[], RuleSet],
        *,
        now: Callable[[], float],
        interval_s: float = 1.0,
    ) -> None:
        self.ref = ref
        self.path = path
        self._load = load
        self._now = now
        self._interval_s = interval_s
        self._stamp = stamp(path)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="switchboard-rules", daemon=True)

    def start(self) -> None:
        _log_warnings(self.ref.current)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=5)

    def reload_now(self) -> None:
        """Ask for a reload (SIGHUP); safe to call from a signal handler."""
        self._wake.set()

    def check_once(self, *, force: bool = False) -> bool | None:
        """Reload if the files changed: True swapped, False rejected, None unchanged."""
        current = stamp(self.path)
        if current == self._stamp and not force:
            return None
        self._stamp = current
        try:
            ruleset = self._load()
        except ConfigError as exc:
            self.ref.last_error = str(exc)
            log.error(
                "rule reload rejected; the previous %d rules keep running:\n%s",
                len(self.ref.current.rules),
                exc,
            )
            return False
        self.ref.swap(ruleset, at=self._now())
        log.info("rules reloaded: %d rules from %d files", len(ruleset.rules), len(ruleset.files))
        _log_warnings(ruleset)
        return True

    def _run(self) -> None:
        while not self._stopping.is_set():
            forced = self._wake.wait(self._interval_s)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self.check_once(force=forced)
            except Exception:  # the watcher must outlive any surprise
                log.exception("rule reload failed")


def _log_warnings(ruleset: RuleSet) -> None:
    """Rules that load but cannot fire (a typo in `on:`): said once per load, not per event."""
    for warning in ruleset.warnings:
        log.warning("rule warning: %s", warning)
