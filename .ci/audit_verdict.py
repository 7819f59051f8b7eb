"""Read `pip-audit --format json` on stdin and say whether the audit really happened.

Why this exists: when no advisory service answers (PyPI's JSON API and OSV unreachable,
only a package mirror), pip-audit skips every package as "Dependency not found on PyPI"
and still prints "No known vulnerabilities found" with exit status 0. That is not an
audit, and CI must not report it as one. The verdict:

  exit 1  at least one known vulnerability was reported (each is listed)
  exit 0  clean: every package was checked against the advisory service
  exit 0  with a warning: some packages could not be checked ("incomplete"), none
          could ("could not run: no advisory service reachable"), or pip-audit failed
          or timed out without a report

Packages skipped because they are editable installs (the project itself, under
`--skip-editable`) are not counted: they are not on any index by design.

pip-audit's JSON (2.x): {"dependencies": [{"name", "version", "vulns": [{"id",
"fix_versions", "aliases", "description"}]} | {"name", "skip_reason"}], "fixes": [...]}.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EDITABLE_MARK = "editable"


def verdict(report: Any, *, exit_code: int = 0, stderr: str = "") -> tuple[int, list[str]]:
    """(exit status, lines to print) for a parsed pip-audit JSON report (None: no report)."""
    if not isinstance(report, dict) or not isinstance(report.get("dependencies"), list):
        why = "timed out" if exit_code == 124 else f"failed (exit {exit_code})"
        detail = stderr.strip().splitlines()[-1:] if stderr.strip() else []
        return 0, [
            f"WARNING: dependency audit could not run: pip-audit {why} without a report"
            + (f": {detail[0]}" if detail else ""),
        ]
    deps = [d for d in report["dependencies"] if isinstance(d, dict)]
    considered = [d for d in deps if EDITABLE_MARK not in str(d.get("skip_reason", ""))]
    skipped = [d for d in considered if "skip_reason" in d]
    audited = [d for d in considered if "skip_reason" not in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    total = len(considered)
    if vulnerable:
        count = sum(len(d["vulns"]) for d in vulnerable)
        lines = [
            f"dependency audit FAILED: {count} known "
            f"{'vulnerability' if count == 1 else 'vulnerabilities'} in "
            f"{len(vulnerable)} of {len(audited)} audited packages"
        ]
        for dep in vulnerable:
            for vuln in dep["vulns"]:
                fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed version"
                aliases = ", ".join(vuln.get("aliases") or [])
                lines.append(
                    f"  {dep['name']} {dep.get('version', '?')}: {vuln.get('id', '?')}"
                    + (f" ({aliases})" if aliases else "")
                    + f"; fixed in: {fixes}"
                )
        if skipped:
            lines.append(f"  and {len(skipped)} of {total} packages could not be checked")
        return 1, lines
    if total == 0:
        return 0, ["WARNING: dependency audit found no packages to check"]
    if not audited:
        reasons = sorted({str(d["skip_reason"]).split(":")[0] for d in skipped})
        return 0, [
            "WARNING: dependency audit could not run: no advisory service reachable "
            f"({len(skipped)} of {total} packages skipped: {'; '.join(reasons)})",
            "  pip-audit's own 'No known vulnerabilities found' means nothing here: "
            "nothing was checked",
        ]
    if skipped:
        names = ", ".join(sorted(str(d["name"]) for d in skipped)[:10])
        more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        return 0, [
            f"WARNING: dependency audit incomplete: {len(skipped)} of {total} packages "
            f"could not be checked ({names}{more}); no known vulnerabilities in the "
            f"{len(audited)} that were"
        ]
    return 0, [f"dependency audit: no known vulnerabilities in {total} packages"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pip-audit-exit", type=int, default=0, help="pip-audit's status")
    parser.add_argument("--stderr-file", help="pip-audit's stderr, quoted when it failed")
    args = parser.parse_args()
    raw = sys.stdin.read()
    try:
        report = json.loads(raw) if raw.strip() else None
    except ValueError:
        report = None
    stderr = ""
    if args.stderr_file:
        try:
            with open(args.stderr_file, encoding="utf-8", errors="replace") as handle:
                stderr = handle.read()
        except OSError:
            stderr = ""
    code, lines = verdict(report, exit_code=args.pip_audit_exit, stderr=stderr)
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main())
