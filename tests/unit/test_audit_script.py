""".ci/audit tells a real dependency audit from one that checked nothing.

pip-audit prints "No known vulnerabilities found" and exits 0 even when every package was
skipped because no advisory service answered; `.ci/audit_verdict.py` reads its JSON and
must turn that into a clear warning, fail (exit 1) only on reported vulnerabilities, and
pass a clean audit. The canned reports have the shape pip-audit 2.x prints with
`--format json` (captured from a real run on this project).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO

VERDICT = REPO / ".ci" / "audit_verdict.py"
AUDIT = REPO / ".ci" / "audit"
SKIPPED = "Dependency not found on PyPI and could not be audited: {name} ({version})"

EDITABLE = {"name": "switchboard-hub", "skip_reason": "distribution marked as editable"}

VULNERABLE: dict[str, Any] = {
    "dependencies": [
        {"name": "anyio", "version": "4.16.0", "vulns": []},
        {
            "name": "jinja2",
            "version": "3.1.2",
            "vulns": [
                {
                    "id": "GHSA-h5c8-rqwp-cp95",
                    "fix_versions": ["3.1.3"],
                    "aliases": ["CVE-2024-22195"],
                    "description": "xmlattr filter allows keys with spaces",
                }
            ],
        },
        EDITABLE,
    ],
    "fixes": [],
}
CLEAN: dict[str, Any] = {
    "dependencies": [
        {"name": "anyio", "version": "4.16.0", "vulns": []},
        {"name": "jinja2", "version": "3.1.6", "vulns": []},
        {"name": "starlette", "version": "1.10.0", "vulns": []},
        EDITABLE,
    ],
    "fixes": [],
}
ALL_SKIPPED: dict[str, Any] = {
    "dependencies": [
        {"name": name, "skip_reason": SKIPPED.format(name=name, version=version)}
        for name, version in (("aiohttp", "3.14.5"), ("anyio", "4.16.0"), ("jinja2", "3.1.6"))
    ]
    + [EDITABLE],
    "fixes": [],
}


def run_verdict(report: dict[str, Any] | str, *, status: int = 0) -> tuple[int, str]:
    text = report if isinstance(report, str) else json.dumps(report)
    done = subprocess.run(
        [sys.executable, str(VERDICT), "--pip-audit-exit", str(status)],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.returncode, done.stdout


def test_reported_vulnerabilities_fail_the_audit_and_are_listed() -> None:
    # pip-audit itself exits 1 when it finds something.
    code, out = run_verdict(VULNERABLE, status=1)

    assert code == 1
    assert "1 known vulnerability in 1 of 2 audited packages" in out
    assert "jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (CVE-2024-22195); fixed in: 3.1.3" in out


def test_a_clean_audit_passes_and_says_how_many_packages_were_checked() -> None:
    code, out = run_verdict(CLEAN)

    assert code == 0
    assert out.strip() == "dependency audit: no known vulnerabilities in 3 packages"
    assert "WARNING" not in out


def test_every_package_skipped_is_a_warning_not_a_clean_audit() -> None:
    code, out = run_verdict(ALL_SKIPPED)

    assert code == 0
    assert "dependency audit could not run: no advisory service reachable" in out
    # The editable project itself is not counted as skipped for want of a service.
    assert "(3 of 3 packages skipped" in out
    assert "no known vulnerabilities in" not in out


def test_some_packages_skipped_is_an_incomplete_audit() -> None:
    report = {"dependencies": CLEAN["dependencies"] + ALL_SKIPPED["dependencies"][:1]}

    code, out = run_verdict(report)

    assert code == 0
    assert "incomplete: 1 of 4 packages could not be checked (aiohttp)" in out


@pytest.mark.parametrize(("stdout", "status"), [("", 124), ("Traceback (most recent", 1)])
def test_no_report_at_all_is_a_warning(stdout: str, status: int) -> None:
    code, out = run_verdict(stdout, status=status)

    assert code == 0
    assert out.startswith("WARNING: dependency audit could not run: pip-audit")


def _fake_pip_audit(tmp_path: Path, report: dict[str, Any], status: int) -> Path:
    canned = tmp_path / "report.json"
    canned.write_text(json.dumps(report), encoding="utf-8")
    fake = tmp_path / "pip-audit"
    fake.write_text(f'#!/bin/sh\ncat "{canned}"\nexit {status}\n', encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return fake


@pytest.mark.parametrize(
    ("report", "status", "expected"), [(ALL_SKIPPED, 0, 0), (VULNERABLE, 1, 1), (CLEAN, 0, 0)]
)
def test_the_script_passes_pip_audits_json_through_the_verdict(
    tmp_path: Path, report: dict[str, Any], status: int, expected: int
) -> None:
    env = {
        **os.environ,
        "PIP_AUDIT": str(_fake_pip_audit(tmp_path, report, status)),
        "PYTHON": sys.executable,
    }

    done = subprocess.run(
        [str(AUDIT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == expected, done.stdout + done.stderr
    assert done.stdout.strip()
