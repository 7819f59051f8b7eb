"""The dashboard tells a newcomer what a rule mistake is and where times and secrets stand
(issue #24); layout at phone width is checked in tests/e2e/test_dashboard_browser.py."""

from __future__ import annotations

import re
from pathlib import Path

from tests.admin_support import ADMIN_TOKEN, ISSUE_OPENED, admin_hub, login
from tests.support import DEFAULT_RULES

TYPO_RULE = """
  - id: issue-closed
    on: github.issue.closed
    actions:
      - log: {to: inbox, message: closed}
"""


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_rules_page_shows_warnings_and_simulate_shows_matches_first(tmp_path: Path) -> None:
    extra = "  notion:\n    secret: {env: SWITCHBOARD_TEST_UNSET_SECRET, optional: true}\n"
    with admin_hub(tmp_path, rules=DEFAULT_RULES + TYPO_RULE, extra_sources=extra) as (_, client):
        login(client, token=ADMIN_TOKEN)
        page = client.get("/admin/rules").text
        # the typo'd rule is named with its location and a suggestion
        assert "1 warning</h2>" in page
        assert "rules/test.yaml:" in page
        assert "never fires on &#39;github.issue.closed&#39;" in page
        assert "did you mean &#39;github.issues.closed&#39;?" in page
        # the simulate box comes before the list of rules
        assert page.index('id="simulate"') < page.index('class="rules-table"')
        result = client.post(
            "/admin/rules/simulate",
            data={
                "csrf": _csrf(page),
                "source": "github",
                "headers": "X-GitHub-Event: issues",
                "payload": ISSUE_OPENED.decode(),
            },
        ).text
        verdicts = result[result.index('class="verdicts"') :]
        # matches first; the rules that did not match folded away below them
        assert verdicts.index('class="match"') < verdicts.index("<details")
        assert "1 rule did not match</summary>" in verdicts
        assert verdicts.index("<details") < verdicts.index("issue-closed")

        sources = client.get("/admin/sources").text
        assert "SWITCHBOARD_SECRET_NOTION" in sources
        assert "docs/operations.md#8-secrets" in sources
        overview = client.get("/admin/").text
        assert re.search(r"\d\d:\d\d:\d\d UTC", overview) or "—" in overview
