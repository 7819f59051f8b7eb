"""deploy/ stays true to the code: real commands, real health paths, valid config, no root.

Docker and Kubernetes are not needed: the files are parsed and checked against the CLI's own
argparse parser, the config loader with the installed plugins, and each other.
"""

from __future__ import annotations

import argparse
import configparser
import re
import shlex
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub import cli
from hub.config import Settings, load_settings_text
from hub.plugins import load_plugins
from hub.rules.templates import TemplateEngine
from hub.runtime import BUILT_IN_SOURCES, load_rules
from tests.support import REPO

DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
SYSTEMD = DEPLOY / "systemd"
ENV_EXAMPLE = DEPLOY / ".env.example"
#: What the hub's commands are allowed to be run as in deploy/.
HUB_COMMANDS = {"serve", "worker", "scheduler"}
ENV_NAME = re.compile(r"^#?\s*([A-Z_][A-Z0-9_]*)=(.*)$")


def _yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml"))


def _documents(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def _k8s_objects() -> list[dict[str, Any]]:
    """The cluster objects (kustomization.yaml is a build file, not one of them)."""
    return [
        d
        for p in sorted(K8S.glob("*.yaml"))
        for d in _documents(p)
        if "kind" in d and d["kind"] != "Kustomization"
    ]


def _k8s(kind: str, name: str | None = None) -> list[dict[str, Any]]:
    found = [o for o in _k8s_objects() if o["kind"] == kind]
    if name is not None:
        found = [o for o in found if o["metadata"]["name"] == name]
    assert found, f"deploy/k8s has no {kind} {name or ''}".strip()
    return found


def _compose() -> dict[str, Any]:
    [doc] = _documents(DEPLOY / "docker-compose.yml")
    assert isinstance(doc, dict)
    return doc


def _env_example() -> dict[str, str]:
    """Names documented in .env.example (commented-out optional ones too) → example value."""
    out: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = ENV_NAME.match(line.strip())
        if match:
            out[match.group(1)] = match.group(2)
    return out


def _env_example_set() -> dict[str, str]:
    """Only the lines that set a value (what docker compose's env_file passes on)."""
    return {
        m.group(1): m.group(2)
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if (m := ENV_NAME.match(line.strip())) and not line.lstrip().startswith("#")
    }


def _parse_cli(argv: Sequence[str], where: str) -> argparse.Namespace:
    """Parse with the real `switchboard` parser; fail naming the file on an unknown flag."""
    try:
        args = cli._parser().parse_args(list(argv))
    except SystemExit as exc:
        raise AssertionError(f"{where}: `switchboard {shlex.join(argv)}` does not parse") from exc
    assert hasattr(args, "run"), f"{where}: `switchboard {shlex.join(argv)}` names no command"
    assert argv[0] in HUB_COMMANDS, f"{where}: unexpected command {argv[0]!r}"
    return args


def _containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    return containers


def _settings(text: str, environ: dict[str, str], base_dir: Path) -> Settings:
    return load_settings_text(
        text, environ=environ, plugins=load_plugins(), base_dir=base_dir, file="configmap"
    )


# --- every file ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses_to_mappings(path: Path) -> None:
    documents = _documents(path)
    assert documents, f"{path} is empty"
    assert all(isinstance(d, dict) for d in documents)


def test_the_expected_files_exist() -> None:
    for name in (
        "Dockerfile",
        "docker-compose.yml",
        ".env.example",
        "k8s/ingress.yaml",
        "k8s/worker.yaml",
        "k8s/scheduler.yaml",
        "k8s/hpa.yaml",
        "k8s/configmap.yaml",
        "k8s/secret.yaml",
        "systemd/switchboard-serve.service",
        "systemd/switchboard-worker@.service",
        "systemd/switchboard-scheduler.service",
    ):
        assert (DEPLOY / name).is_file(), f"deploy/{name} is missing"


# --- Dockerfile ----------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def test_dockerfile_is_multi_stage_on_slim_python_3_11() -> None:
    froms = [args for ins, args in _dockerfile() if ins == "FROM"]
    assert len(froms) >= 2, "build and runtime stages"
    assert all(f.startswith("python:3.11-slim") for f in froms), froms


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [args for ins, args in _dockerfile() if ins == "USER"]
    assert users, "no USER: the hub would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_dockerfile_healthcheck_calls_healthz() -> None:
    [healthcheck] = [args for ins, args in _dockerfile() if ins == "HEALTHCHECK"]
    assert "/healthz" in healthcheck


def test_dockerfile_entrypoint_is_the_console_script_and_cmd_parses() -> None:
    instructions = dict(_dockerfile())
    assert yaml.safe_load(instructions["ENTRYPOINT"]) == ["switchboard"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["switchboard"] == "hub.cli:main"
    _parse_cli(yaml.safe_load(instructions["CMD"]), "Dockerfile CMD")


def test_dockerfile_copies_only_paths_that_exist() -> None:
    for ins, args in _dockerfile():
        if ins == "COPY" and "--from=" not in args:
            *sources, _target = args.split()
            for source in sources:
                assert (REPO / source).exists(), f"Dockerfile copies missing {source}"


def test_the_image_installs_the_schemas_with_the_package() -> None:
    # hub/schemas links to ../schemas and ships as package data: the build stage needs both.
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    build = text.split("AS runtime")[0]
    assert "COPY schemas ./schemas" in build
    assert build.index("COPY schemas") < build.index("pip install .")
    from hub import validation

    assert validation.SCHEMA_DIR.resolve() == REPO / "schemas"
    assert (validation.SCHEMA_DIR / "config.schema.json").is_file()


# --- docker compose ------------------------------------------------------------------------


def test_compose_runs_an_ingress_and_two_workers_on_postgres_and_redis() -> None:
    services = _compose()["services"]
    assert {"ingress", "worker", "postgres", "redis"} <= set(services)
    ingress = _parse_cli(services["ingress"]["command"], "compose ingress")
    assert ingress.run is cli._serve
    assert ingress.no_worker, "the ingress must leave the work to the worker services"
    worker = _parse_cli(services["worker"]["command"], "compose worker")
    assert worker.run is cli._worker
    assert services["worker"]["deploy"]["replicas"] >= 2
    # Nothing else fires `schedule:` rules or renews Google push channels.
    assert "scheduler" in services, "compose runs no scheduler: schedules would never fire"
    scheduler = _parse_cli(services["scheduler"]["command"], "compose scheduler")
    assert scheduler.run is cli._scheduler
    assert services["scheduler"].get("deploy", {}).get("replicas", 1) >= 1
    env = _env_example_set()
    assert env["SWITCHBOARD_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["SWITCHBOARD_REDIS_URL"].startswith("redis://redis:")


def test_compose_hub_services_read_env_from_dot_env_and_mount_config_and_data() -> None:
    compose = _compose()
    for name in ("ingress", "worker", "scheduler"):
        service = compose["services"][name]
        assert service["env_file"] == ".env"
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        targets = [v.split(":")[1] for v in service["volumes"]]
        assert "/etc/switchboard/switchboard.yaml" in targets
        assert "/var/lib/switchboard" in targets
        named = [v.split(":")[0] for v in service["volumes"] if not v.startswith(".")]
        assert set(named) <= set(compose["volumes"])
        assert service["environment"]["SWITCHBOARD_CONFIG"] == "/etc/switchboard/switchboard.yaml"
    assert "/readyz" in " ".join(compose["services"]["ingress"]["healthcheck"]["test"])
    assert compose["services"]["worker"]["healthcheck"] == {"disable": True}
    # The image's HEALTHCHECK polls :8000, where only an ingress listens.
    assert compose["services"]["scheduler"]["healthcheck"] == {"disable": True}


def test_compose_interpolates_only_variables_documented_in_env_example() -> None:
    text = (DEPLOY / "docker-compose.yml").read_text(encoding="utf-8")
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text))
    assert used
    assert used <= set(_env_example_set()), used - set(_env_example_set())


# --- .env.example --------------------------------------------------------------------------


def _hub_env_names() -> set[str]:
    """Every full SWITCHBOARD_* name the code mentions (prefixes like SECRET_ excluded)."""
    names: set[str] = set()
    for root in ("hub", "connectors"):
        for path in (REPO / root).rglob("*.py"):
            names |= set(re.findall(r"\bSWITCHBOARD_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    return names


def test_env_example_documents_every_switchboard_variable_the_code_reads() -> None:
    documented = set(_env_example())
    missing = _hub_env_names() - documented
    assert not missing, f"add to deploy/.env.example: {sorted(missing)}"
    for source in set(load_plugins().sources) - set(BUILT_IN_SOURCES):  # those take no webhooks
        name = f"SWITCHBOARD_SECRET_{source.upper().replace('-', '_')}"
        assert name in documented, f"deploy/.env.example lacks {name}"


def test_env_example_has_a_comment_for_every_variable_and_no_real_secret() -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        match = ENV_NAME.match(line.strip())
        if not match or line.startswith("#"):
            continue
        name, value = match.groups()
        above = index - 1
        while above >= 0 and ENV_NAME.match(lines[above]):  # a block of related variables
            above -= 1
        assert above >= 0, f"{name} has no comment above it"
        assert lines[above].startswith("#"), f"{name} has no comment above it"
        # An empty value is a config error (hub/secrets.py): optional ones stay commented.
        assert value, f"{name} is set to an empty value"
        if "SECRET" in name or "TOKEN" in name or "PASSWORD" in name:
            assert value == "change-me", f"{name} looks like a real secret"
        if "://" in value and "@" in value:
            assert ":change-me@" in value, f"{name} has a password that looks real"


# --- Kubernetes ----------------------------------------------------------------------------


def test_k8s_manifests_declare_no_namespace() -> None:
    for obj in _k8s_objects():
        assert "namespace" not in obj["metadata"], obj["metadata"]["name"]
        assert obj["kind"] != "Namespace"


@pytest.mark.parametrize(
    "name", ["switchboard-ingress", "switchboard-worker", "switchboard-scheduler"]
)
def test_k8s_deployments_are_non_root_read_only_and_bounded(name: str) -> None:
    [deployment] = _k8s("Deployment", name)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for container in _containers(deployment):
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), kind
        image = container["image"]
        assert ":" in image, "pin the image tag"
        assert not image.endswith(":latest"), "pin the image tag"
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        # The root filesystem is read-only: the data directory and /tmp must be volumes.
        writable = {"/var/lib/switchboard", "/tmp"}  # noqa: S108  (an emptyDir, not a temp file)
        assert {*writable, "/etc/switchboard/switchboard.yaml"} <= mounts


def test_k8s_ingress_probes_health_and_readiness_on_its_port() -> None:
    [deployment] = _k8s("Deployment", "switchboard-ingress")
    [container] = _containers(deployment)
    args = _parse_cli(container["args"], "k8s ingress")
    assert args.run is cli._serve
    assert args.no_worker
    [port] = container["ports"]
    assert port["containerPort"] == args.port
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] in (port["name"], port["containerPort"])
    [service] = _k8s("Service", "switchboard-ingress")
    assert service["spec"]["selector"].items() <= (
        deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert service["spec"]["ports"][0]["targetPort"] in (port["name"], port["containerPort"])


def test_k8s_worker_runs_the_worker_command_and_is_autoscaled() -> None:
    [deployment] = _k8s("Deployment", "switchboard-worker")
    [container] = _containers(deployment)
    assert _parse_cli(container["args"], "k8s worker").run is cli._worker
    [hpa] = _k8s("HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "switchboard-worker")
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_k8s_scheduler_runs_the_scheduler_command_without_http_probes() -> None:
    [deployment] = _k8s("Deployment", "switchboard-scheduler")
    [container] = _containers(deployment)
    assert _parse_cli(container["args"], "k8s scheduler").run is cli._scheduler
    assert deployment["spec"]["replicas"] >= 1
    assert not {"readinessProbe", "livenessProbe", "ports"} & set(container), (
        "a scheduler serves no HTTP"
    )
    [kustomization] = _documents(K8S / "kustomization.yaml")
    assert "scheduler.yaml" in kustomization["resources"]


def test_k8s_deployments_reference_only_config_maps_and_secrets_that_exist() -> None:
    config_maps = {o["metadata"]["name"] for o in _k8s_objects() if o["kind"] == "ConfigMap"}
    secrets = {o["metadata"]["name"] for o in _k8s_objects() if o["kind"] == "Secret"}
    for deployment in _k8s("Deployment"):
        for volume in deployment["spec"]["template"]["spec"]["volumes"]:
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps
        for container in _containers(deployment):
            for source in container.get("envFrom", []):
                assert source["secretRef"]["name"] in secrets


def _secret_env() -> dict[str, str]:
    [secret] = _k8s("Secret", "switchboard-credentials")
    data: dict[str, str] = secret["stringData"]
    return data


def _env_refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("env"), str):
            yield value["env"]
        for item in value.values():
            yield from _env_refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _env_refs(item)


def test_every_k8s_variable_is_documented_in_env_example() -> None:
    documented = set(_env_example())
    [config] = _k8s("ConfigMap", "switchboard-config")
    used = set(_env_refs(yaml.safe_load(config["data"]["switchboard.yaml"])))
    used |= set(_secret_env())
    for deployment in _k8s("Deployment"):
        for container in _containers(deployment):
            used |= {e["name"] for e in container.get("env", [])}
    assert not used - documented, f"add to deploy/.env.example: {sorted(used - documented)}"


def test_k8s_secret_template_holds_placeholders_only() -> None:
    for name, value in _secret_env().items():
        assert value, f"{name}: an empty value is a config error; leave the key out"
        if "SECRET" in name or "TOKEN" in name:
            assert value == "change-me", name


def test_the_config_map_loads_with_the_real_loader_and_its_rules_check(tmp_path: Path) -> None:
    [config] = _k8s("ConfigMap", "switchboard-config")
    [rules] = _k8s("ConfigMap", "switchboard-rules")
    # given the pod's layout: switchboard.yaml with rules/ beside it, env from the Secret
    (tmp_path / "rules").mkdir()
    for name, text in rules["data"].items():
        (tmp_path / "rules" / name).write_text(text, encoding="utf-8")
    settings = _settings(config["data"]["switchboard.yaml"], _secret_env(), tmp_path)
    # then it is the production shape, listening beyond localhost
    assert not settings.is_embedded
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.server.host == "0.0.0.0"  # noqa: S104  (a pod must listen beyond lo)
    assert settings.admin is not None
    result = load_rules(settings, load_plugins(), TemplateEngine())
    assert result.ruleset.rules, "the rules ConfigMap holds no rule"


# --- systemd -------------------------------------------------------------------------------


def _unit(name: str) -> configparser.ConfigParser:
    # strict=False: systemd allows repeated keys (Environment=), the last one wins here.
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string((SYSTEMD / name).read_text(encoding="utf-8"), source=name)
    return parser


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("switchboard-serve.service", "serve"),
        ("switchboard-worker@.service", "worker"),
        ("switchboard-scheduler.service", "scheduler"),
    ],
)
def test_systemd_units_run_a_real_command_hardened(name: str, command: str) -> None:
    unit = _unit(name)
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    service = unit["Service"]
    binary, *argv = shlex.split(service["ExecStart"])
    assert Path(binary).name == "switchboard"
    assert argv[0] == command
    _parse_cli(argv, name)
    assert service.get("DynamicUser") == "yes" or service.get("User") not in (None, "root")
    assert service["ProtectSystem"] == "strict"
    assert service["NoNewPrivileges"] == "yes"
    assert service["EnvironmentFile"].startswith("/etc/switchboard/")
    # ProtectSystem=strict leaves only the state directory writable.
    assert service["StateDirectory"] == "switchboard"
    assert service["WorkingDirectory"] == "/var/lib/switchboard"


def test_kustomization_lists_every_manifest() -> None:
    [kustomization] = _documents(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present
