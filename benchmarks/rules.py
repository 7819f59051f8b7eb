"""Rule matching cost against rule-set size: 10, 1,000 and 10,000 rules in one run.

Goal (issue 4): matching with 10,000 rules costs at most 2x the 10-rule case, because
rules are indexed by event type (globs resolved once per type) and by the equality test
most rules of a type share. The mix is realistic: most rules listen to other event types,
1% listen to the benchmark's type with different `where` values, 2% are globs.
Each event is matched and the matching rules' actions rendered, as the worker does.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from connectors.base import Destination
from hub.plugins import load_plugins
from hub.rules import RuleSet, load_ruleset, match_rules, render_actions
from hub.rules.templates import TemplateEngine

TARGET_TYPE = "notion.page.properties_updated"
PROJECTS = [f"Project {n}" for n in range(400)]
LIVE_PROJECTS = PROJECTS[:20]  # what the benchmark's events carry


def _rule(index: int, on: str, where: str) -> str:
    return (
        f'  - id: rule-{index}\n    on: "{on}"\n    where:\n      {where}\n    actions:\n'
        f'      - log: {{to: inbox, message: "{{{{ event.data.entity.title }}}} #{index}"}}\n'
    )


def rule_file(count: int, seed: int) -> str:
    """The same 10 relevant rules in every size; the rest is realistic filler that never
    matches the benchmark's events, so every size renders the same actions."""
    rng = random.Random(seed)
    rules = [_rule(i, TARGET_TYPE, f"fields.Project: {LIVE_PROJECTS[i]}") for i in range(8)]
    rules.append(_rule(8, "notion.page.*", "changes.Status: {changed: true}"))
    rules.append(_rule(9, "notion.*", "fields.Status: Done"))
    for index in range(10, count):
        roll = rng.random()
        if roll < 0.02:  # same type, other projects
            rules.append(_rule(index, TARGET_TYPE, f"fields.Project: {rng.choice(PROJECTS[20:])}"))
        elif roll < 0.03:  # globs on other families
            rules.append(_rule(index, f"other{index % 50}.*", "fields.Status: Done"))
        else:  # other event types
            rules.append(_rule(index, f"other{index % 500}.event.changed", "fields.Status: Done"))
    return "rules:\n" + "".join(rules[:count])


def build(count: int, seed: int) -> tuple[RuleSet, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rules.yaml"
        path.write_text(rule_file(count, seed))
        started = time.perf_counter()
        ruleset = load_ruleset(
            path,
            connectors=load_plugins().connectors,
            destinations={
                "inbox": Destination(name="inbox", connector="log", options={"path": "x"})
            },
            engine=TemplateEngine(),
        )
        return ruleset, time.perf_counter() - started


def events(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "type": TARGET_TYPE if rng.random() < 0.8 else "notion.page.created",
            "source": "notion/workspace/acme",
            "data": {
                "entity": {"kind": "task", "id": str(n), "title": f"Task {n}"},
                "fields": {"Project": rng.choice(LIVE_PROJECTS), "Status": "Done"},
                "changes": {},
            },
        }
        for n in range(count)
    ]


def measure(ruleset: RuleSet, sample: list[dict[str, Any]], rounds: int) -> tuple[float, int]:
    """Best-of-rounds events/s (the least disturbed round) and total actions rendered."""
    best, rendered = 0.0, 0
    for _ in range(rounds):
        rendered = 0
        started = time.perf_counter()
        for event in sample:
            for rule in match_rules(ruleset, event):
                rendered += len(render_actions(rule, event))
        best = max(best, len(sample) / (time.perf_counter() - started))
    return best, rendered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sample = events(args.events, seed=2)
    results = {}
    for size in (10, 1_000, 10_000):
        ruleset, load_s = build(size, seed=1)
        rate, rendered = measure(ruleset, sample, args.rounds)
        results[size] = rate
        print(
            f"{size:>6} rules: {rate:>10,.0f} events/s matched+rendered "
            f"({rendered} actions per round), loaded in {load_s:.2f}s"
        )
    ratio = results[10] / results[10_000]
    print(f"cost ratio 10,000 rules / 10 rules: {ratio:.2f}x (goal <= 2x)")


if __name__ == "__main__":
    main()
