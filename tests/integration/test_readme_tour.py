"""The README's tour, pasted in order: its `sh` blocks run in one bash against a hub started
as `make run` starts it, and each block's output matches the `text` block shown after it
(`...` stands for any text)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import REPO, free_port, wait_until

pytestmark = pytest.mark.slow

BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
END = "@@ block done @@"


def tour_blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced block of the README's tour section."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("## A one-minute tour")
    section = readme[start : readme.index("\n## ", start + 1)]
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(section)]


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A checkout-like directory with `switchboard serve` running as `make run` runs it."""
    for name in (".venv", "rules", "templates", "docs"):
        (tmp_path / name).symlink_to(REPO / name)
    shutil.copy(REPO / "switchboard.example.yaml", tmp_path / "switchboard.yaml")
    port = free_port()
    env = {
        **os.environ,
        "SWITCHBOARD_SECRET_GITHUB": "demo-secret",
        "SWITCHBOARD_ADMIN_TOKEN": "demo-admin-token",
    }
    env.pop("SWITCHBOARD_CONFIG", None)
    terminal = (tmp_path / "terminal.log").open("w")
    proc = subprocess.Popen(
        [str(REPO / ".venv/bin/switchboard"), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=terminal,
        stderr=subprocess.STDOUT,
    )

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        except httpx.TransportError:
            return proc.poll() is not None  # exited: fail below with its stderr

    try:
        wait_until(healthy, 30, "the hub answered /healthz")
        assert proc.poll() is None, (tmp_path / "terminal.log").read_text()
        yield tmp_path, port
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        terminal.close()


def expected_lines(text: str) -> list[re.Pattern[str]]:
    return [
        re.compile(".*".join(re.escape(part) for part in line.split("...")))
        for line in text.strip().splitlines()
    ]


def test_the_tour_commands_work_pasted_in_order(hub: tuple[Path, int]) -> None:
    root, port = hub
    blocks = tour_blocks()
    commands = [text for lang, text in blocks if lang == "sh"]
    assert len(commands) >= 4, "the tour lost its command blocks"
    script = "\n".join(
        f"{text.replace('127.0.0.1:8000', f'127.0.0.1:{port}')}\necho '{END}'" for text in commands
    )
    # A fresh terminal: the venv not active, only the system's PATH (Python 3, curl).
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(root), "LANG": "C.UTF-8"}
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail"],
        input=script,
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == "", done.stderr
    outputs = done.stdout.split(END + "\n")
    # Each command block's output matches the text block right after it.
    index = 0
    for position, (lang, text) in enumerate(blocks):
        if lang != "sh":
            continue
        output = outputs[index].strip().splitlines()
        index += 1
        following = blocks[position + 1] if position + 1 < len(blocks) else ("", "")
        if following[0] != "text":
            continue
        patterns = expected_lines(following[1])
        assert len(output) == len(patterns), f"{text}\n→\n{outputs[index - 1]}"
        for line, pattern in zip(output, patterns, strict=True):
            assert pattern.fullmatch(line), f"{line!r} does not match {pattern.pattern!r}"
    # And the hub's terminal shows what the README says it shows.
    shown = next(t for lang, t in blocks if lang == "" and "[github-issue-opened]" in t)
    terminal = root / "terminal.log"
    wait_until(
        lambda: shown.strip() in terminal.read_text(encoding="utf-8"),
        10,
        f"the hub's terminal shows {shown.strip()!r}",
    )
