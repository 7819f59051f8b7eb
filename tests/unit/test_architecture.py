"""Guards on the code's shape: layering, the plugin API surface, no hidden globals."""

from __future__ import annotations

import ast
from pathlib import Path

import connectors.base

REPO = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_connectors_import_only_connectors_base_and_third_party_libraries() -> None:
    for path in (REPO / "connectors").glob("*.py"):
        bad = {n for n in _imports(path) if n.startswith("hub")}
        bad |= {
            n
            for n in _imports(path)
            if n.startswith("connectors.")
            and n not in ("connectors.base",)
            and not n.startswith("connectors._")
        }
        assert not bad, f"{path.name} imports {sorted(bad)}; connectors may use connectors.base"


def test_sql_redis_and_jinja_each_live_at_one_edge() -> None:
    edges = {
        "sqlalchemy": ("hub/store/",),
        "redis": ("hub/pipeline/queue.py", "hub/pipeline/ratelimit.py"),
        "dramatiq": ("hub/pipeline/queue.py", "hub/pipeline/worker.py", "hub/pipeline/consumer.py"),
        "jinja2": ("hub/rules/templates.py",),
        "croniter": ("hub/rules/schedule.py",),
    }
    for path in (REPO / "hub").rglob("*.py"):
        rel = path.relative_to(REPO).as_posix()
        for lib, allowed in edges.items():
            uses = any(n == lib or n.startswith(lib + ".") for n in _imports(path))
            if uses:
                assert rel.startswith(allowed), f"{rel} imports {lib}; only {allowed} may"


#: Provider clients that a connector and a source share: private modules of connectors/
#: (the one place both layers may import), not plugins. connectors/_google.py is Google's
#: token client, used by the gcal connector and hub/sources/_gcal_api.py alike.
SHARED_PROVIDER_CLIENTS = {"connectors._google": ("hub/sources/",)}


def test_core_never_names_a_connector_module() -> None:
    for path in (REPO / "hub").rglob("*.py"):
        rel = path.relative_to(REPO).as_posix()
        named = {
            n
            for n in _imports(path)
            if n.startswith("connectors.")
            and n != "connectors.base"
            and not (n in SHARED_PROVIDER_CLIENTS and rel.startswith(SHARED_PROVIDER_CLIENTS[n]))
        }
        assert not named, f"{path} imports {named}; plugins load through entry points"


def test_plugin_api_surface_is_pinned() -> None:
    assert sorted(connectors.base.__all__) == sorted(
        [
            "SECRET_REF_SCHEMA",
            "CliCommand",
            "CliTools",
            "Connector",
            "ConnectorEnv",
            "DeliveryContext",
            "Destination",
            "RenderedAction",
            "SecretValue",
            "SendResult",
            "classify_status",
            "fail",
            "ok",
            "parse_duration",
            "parse_retry_after",
            "redact_url",
            "replace_lone_surrogates",
            "retry",
            "secret_option",
            "shared_budget_key",
        ]
    )
