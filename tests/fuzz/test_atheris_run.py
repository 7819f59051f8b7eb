"""The atheris target runs clean for a bounded number of inputs, and its seeds go deep.

tests/fuzz/atheris_normalizers.py is run as its own process (atheris instruments `hub`
at import, so it must import it first) with a fixed seed, so a CI failure reproduces.
A crash makes libFuzzer exit non-zero and leave the input as crash-* in tmp_path.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO, in_ci

FUZZER = REPO / "tests" / "fuzz" / "atheris_normalizers.py"
RUNS = 3000
WEBHOOK_SOURCES = ("discord", "gcal", "github", "notion", "notion-automation", "slack")


@pytest.fixture(autouse=True)
def _atheris_installed() -> None:
    if importlib.util.find_spec("atheris") is None:
        if in_ci():
            pytest.fail("atheris is a dev dependency and must be installed in CI")
        pytest.skip("atheris is not installed (pip install -e '.[dev]')")


def _run(*args: str, cwd: Path, timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(FUZZER), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@pytest.mark.slow
def test_a_short_fuzz_run_finds_no_crash(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()

    done = _run(
        str(corpus),
        f"-artifact_prefix={tmp_path}/",
        f"-atheris_runs={RUNS}",
        "-seed=1",
        cwd=tmp_path,
        timeout_s=120,
    )

    crashes = sorted(p.name for p in tmp_path.glob("crash-*"))
    output = "\n".join(
        line for line in (done.stdout + done.stderr).splitlines() if "Instrumenting" not in line
    )
    assert done.returncode == 0, f"crash inputs {crashes}:\n{output[-6000:]}"
    assert not crashes
    assert f"Done {RUNS} " in output or f"Done {RUNS - 1} " in output, output[-2000:]


@pytest.mark.slow
def test_every_webhook_source_has_seeds_that_normalize_to_events(tmp_path: Path) -> None:
    # A seed the harness signs wrongly is refused at once, and the fuzzer never reaches
    # that source's parser: guard the seeds, not just the absence of crashes.
    done = _run("--seed-report", cwd=tmp_path, timeout_s=60)

    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for source in WEBHOOK_SOURCES:
        assert report.get(source, {}).get("events", 0) >= 1, (source, report)
