"""docker-compose.yml and the Dockerfile, checked against the code: pinned images, settings the code reads,
values it accepts, subcommands the CLI has, and services wired to each other.

Pure: the files are parsed, nothing is built or started. Services with a ``build`` run our image, so their
environment must be names ``infra.settings`` reads; the other services are checked only for pins and wiring.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import AliasChoices, ValidationError

from infra.cli import build_parser
from infra.settings import Settings, setting_env_names
from infra.temporal import search_attribute_flags

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
APP_SERVICES = sorted(name for name, service in SERVICES.items() if "build" in service)

# The roles a container may run, and the variables each one cannot do without. `orchestrator dev` is not
# here on purpose: it starts embedded services, which a container must not.
REQUIRED_ENV: dict[str, set[str]] = {
    "api": {"DATABASE_URL", "TEMPORAL_ADDRESS", "ORCH_API_HOST", "ORCH_WEBHOOK_SECRET"},
    "worker": {"DATABASE_URL", "TEMPORAL_ADDRESS", "ORCH_WMS_URL"},
    "simulator": {"ORCH_API_PUBLIC_URL", "ORCH_SIMULATOR_HOST", "ORCH_WEBHOOK_SECRET"},
    "dispatcher": {"DATABASE_URL"},
    "db upgrade": {"DATABASE_URL"},
    "seed": {"DATABASE_URL"},
}
# Roles the stack cannot work without (seed is optional, run on request; without the dispatcher no subscriber
# hears of a status change).
STACK_ROLES = ["api", "worker", "simulator", "dispatcher", "db upgrade"]
# Roles that serve HTTP, with the setting that holds their port.
HTTP_ROLES = {"api": ("api_host", "api_port"), "simulator": ("simulator_host", "simulator_port")}
# Environment the image sets for Python rather than for our code.
PLATFORM_ENV = {"PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}


# --- reading the files ------------------------------------------------------------------------------------

_INTERPOLATION = re.compile(r"\$\$|\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}")


def interpolate(value: str) -> str:
    """Compose's interpolation with an empty environment: ``${X:-default}`` gives the default, ``$$`` a ``$``."""
    return _INTERPOLATION.sub(lambda m: "$" if m.group(0) == "$$" else m.group("default") or "", value)


def _scalar(value: object) -> str:
    if isinstance(value, bool):  # YAML true/false reach the container as "true"/"false"
        return str(value).lower()
    return "" if value is None else str(value)


def environment(name: str) -> dict[str, str]:
    """A service's environment as the container sees it, from either the mapping or the list syntax."""
    raw = SERVICES[name].get("environment") or {}
    pairs = dict(item.split("=", 1) if "=" in item else (item, "") for item in raw) if isinstance(raw, list) else raw
    return {key: interpolate(_scalar(value)) for key, value in pairs.items()}


def command(name: str) -> list[str]:
    raw = SERVICES[name].get("command") or []
    return shlex.split(raw) if isinstance(raw, str) else [str(part) for part in raw]


def depends_on(name: str) -> dict[str, str]:
    """Dependency name → condition (the short list syntax means ``service_started``)."""
    raw = SERVICES[name].get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {dep: (spec or {}).get("condition", "service_started") for dep, spec in raw.items()}


def container_ports(name: str) -> list[int]:
    """The container side of each published port ("127.0.0.1:8000:8000/tcp" → 8000, or the long syntax)."""
    ports = SERVICES[name].get("ports") or []
    return [int(p["target"] if isinstance(p, dict) else str(p).rsplit(":", 1)[-1].split("/")[0]) for p in ports]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comment lines dropped and continuation lines joined."""
    lines = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    pairs = [line.strip().partition(" ") for line in joined.splitlines() if line.strip()]
    return [(keyword.upper(), rest.strip()) for keyword, _, rest in pairs]


def dockerfile_env() -> dict[str, str]:
    """The ENV of the final stage: what a container of the image starts with."""
    env: dict[str, str] = {}
    for keyword, args in dockerfile_instructions():
        if keyword == "FROM":
            env = {}
        elif keyword == "ENV":
            for token in shlex.split(args):
                variable, _, value = token.partition("=")
                env[variable] = value
    return env


# --- what the code makes of them --------------------------------------------------------------------------


def role_of(argv: list[str]) -> str | None:
    """The subcommand ``argv`` selects, parsed by the CLI's own parser; None if it does not parse."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:  # argparse has printed the usage error
        return None
    return " ".join(part for part in (args.command, getattr(args, "db_command", None)) if part)


def container_env(name: str) -> dict[str, str]:
    """What the process sees: the image's ENV, overridden by the service's environment."""
    return dockerfile_env() | environment(name)


def settings_of(name: str) -> Settings:
    return Settings.model_validate(container_env(name))


def field_of(env_name: str) -> str | None:
    """The Settings field a variable sets (``ORCH_WMS_URL`` and ``WMS_URL`` alike → ``wms_url``); None if none."""
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices) and env_name in alias.choices:
            return field
    return None


def services_running(role: str) -> list[str]:
    return [name for name in APP_SERVICES if role_of(command(name)) == role]


def services_with_image(prefix: str) -> list[str]:
    return [name for name, service in SERVICES.items() if str(service.get("image", "")).startswith(prefix)]


def only(names: list[str], what: str) -> str:
    assert len(names) == 1, f"expected exactly one service {what}, found {names}"
    return names[0]


def image_tag(image: str) -> str | None:
    """The tag of an image reference, or None; a digest counts as a pin."""
    if "@sha256:" in image:
        return image.split("@", 1)[1]
    last = image.rsplit("/", 1)[-1]  # a registry host may carry a port: registry:5000/name:tag
    return last.split(":", 1)[1] if ":" in last else None


# --- images -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_image_is_pinned_or_built_here(name: str) -> None:
    service = SERVICES[name]
    if "build" in service:
        return
    image = service.get("image")
    assert image, f"{name}: neither `image` nor `build`"
    tag = image_tag(image)
    assert tag, f"{name}: image {image!r} has no tag, so it floats"
    assert tag != "latest", f"{name}: image {image!r} is pinned to `latest`, which floats"


def test_dockerfile_base_image_is_a_patch_release() -> None:
    args = dict(a.split("=", 1) for keyword, a in dockerfile_instructions() if keyword == "ARG" and "=" in a)
    for keyword, rest in dockerfile_instructions():
        if keyword != "FROM":
            continue
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], rest.split()[0])
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", image), f"Dockerfile: FROM {image!r} is not pinned"


def test_dockerfile_runs_the_cli() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    found = dict(dockerfile_instructions())
    assert json.loads(found["ENTRYPOINT"]) == ["orchestrator"], "Dockerfile: ENTRYPOINT must be the CLI"
    assert "orchestrator" in scripts, "pyproject.toml: no `orchestrator` console script for the ENTRYPOINT"
    assert role_of(json.loads(found["CMD"])) in REQUIRED_ENV, "Dockerfile: CMD is not a role for a container"
    assert found["USER"].split(":")[0] not in {"0", "root"}, "Dockerfile: the image must not run as root"


@pytest.mark.parametrize("variable", sorted(set(dockerfile_env()) - PLATFORM_ENV))
def test_dockerfile_env_is_read_by_the_code(variable: str) -> None:
    assert variable in setting_env_names(), f"Dockerfile: ENV {variable} is not read by infra/settings.py"


# --- our services: commands and environment ---------------------------------------------------------------


@pytest.mark.parametrize("name", APP_SERVICES)
def test_command_is_an_orchestrator_subcommand(name: str) -> None:
    assert "entrypoint" not in SERVICES[name], f"{name}: overrides the image's `orchestrator` entrypoint"
    assert command(name), f"{name}: no command (the image default would run silently)"
    role = role_of(command(name))
    assert role is not None, f"{name}: {command(name)!r} is not an `orchestrator` command (see infra/cli.py)"
    assert role in REQUIRED_ENV, f"{name}: `orchestrator {role}` is not a role for a container"


@pytest.mark.parametrize("role", STACK_ROLES)
def test_every_role_of_the_stack_has_a_service(role: str) -> None:
    assert services_running(role), f"no service runs `orchestrator {role}`"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_environment_names_are_read_by_the_code(name: str) -> None:
    known = setting_env_names()
    for variable in environment(name):
        assert variable in known, f"{name}: {variable} is not read by infra/settings.py (typo, or a stale name?)"
    fields = [field_of(variable) for variable in environment(name)]
    for field in set(fields) - {None}:
        assert fields.count(field) == 1, f"{name}: sets `{field}` under two names; one silently wins"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_required_environment_is_present(name: str) -> None:
    role = role_of(command(name))
    env = environment(name)
    for variable in sorted(REQUIRED_ENV.get(role or "", set())):
        assert env.get(variable), f"{name} (`orchestrator {role}`): {variable} is missing or empty"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_environment_is_valid_for_settings(name: str) -> None:
    try:
        Settings.model_validate(container_env(name))
    except ValidationError as err:
        pytest.fail(f"{name}: infra.settings.Settings rejects this environment:\n{err}")


@pytest.mark.parametrize(("role", "fields"), sorted(HTTP_ROLES.items()))
def test_http_services_listen_where_they_are_published(role: str, fields: tuple[str, str]) -> None:
    host_field, port_field = fields
    for name in services_running(role):
        settings = settings_of(name)
        assert getattr(settings, host_field) == "0.0.0.0", f"{name}: {host_field} must be 0.0.0.0 in a container"
        port = getattr(settings, port_field)
        targets = container_ports(name)
        assert targets in ([], [port]), f"{name}: publishes container port(s) {targets}, listens on {port}"


# --- wiring between services ------------------------------------------------------------------------------


def _postgres() -> tuple[str, int]:
    return only(services_with_image("postgres:"), "from the postgres image"), 5432


def _temporal() -> tuple[str, int]:
    return only(services_with_image("temporalio/server:"), "from temporalio/server"), 7233


def _simulator() -> tuple[str, int]:
    name = only(services_running("simulator"), "running the simulator")
    return name, settings_of(name).simulator_port


def _api() -> tuple[str, int]:
    name = only(services_running("api"), "running the API")
    return name, settings_of(name).api_port


# Setting → the service (and port) its address must reach.
TARGETS: dict[str, Callable[[], tuple[str, int]]] = {
    "database_url": _postgres,
    "temporal_address": _temporal,
    "wms_url": _simulator,
    "api_public_url": _api,
}
LINKS = [(name, variable) for name in APP_SERVICES for variable in environment(name) if field_of(variable) in TARGETS]


@pytest.mark.parametrize(("name", "variable"), LINKS)
def test_addresses_point_at_the_right_service(name: str, variable: str) -> None:
    value = environment(name)[variable]
    parsed = urlsplit(value if "://" in value else f"//{value}")
    target, port = TARGETS[str(field_of(variable))]()
    assert parsed.hostname == target, f"{name}: {variable}={value!r} does not point at the `{target}` service"
    assert (parsed.port or port) == port, f"{name}: {variable}={value!r} does not use port {port} of `{target}`"


def test_simulator_signs_with_the_secret_the_api_verifies() -> None:
    names = services_running("api") + services_running("simulator")
    secrets = {settings_of(name).webhook_secret.get_secret_value() for name in names}
    assert len(secrets) == 1, f"ORCH_WEBHOOK_SECRET differs between {names}: webhooks would be refused"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_depends_on_names_existing_services(name: str) -> None:
    for dependency, condition in depends_on(name).items():
        assert dependency in SERVICES, f"{name}: depends on `{dependency}`, which is not a service"
        if condition == "service_healthy":
            assert "healthcheck" in SERVICES[dependency], (
                f"{name}: waits for `{dependency}` to be healthy, but it has no healthcheck"
            )


# --- Temporal set-up --------------------------------------------------------------------------------------


def _temporal_setup() -> str:
    return only(
        [name for name in SERVICES if "search-attribute create" in " ".join(command(name))],
        "registering search attributes",
    )


def test_registered_search_attributes_match_the_workflow() -> None:
    setup = _temporal_setup()
    expected = set(search_attribute_flags()[1::2])  # ["--search-attribute", "OrderStatus=Keyword", ...]
    script = " ".join(command(setup))
    registered = set(re.findall(r"\b\w+=(?:Keyword|KeywordList|Text|Int|Double|Bool|Datetime)\b", script))
    assert registered == expected, (
        f"{setup}: registers {sorted(registered)}, workflows.contracts.SEARCH_ATTRIBUTES has {sorted(expected)}"
    )


@pytest.mark.parametrize("role", ["api", "worker"])
def test_temporal_clients_wait_for_the_namespace(role: str) -> None:
    setup = _temporal_setup()
    for name in services_running(role):
        namespace = settings_of(name).temporal_namespace
        assert environment(setup).get("TEMPORAL_NAMESPACE") == namespace, (
            f"{setup} prepares namespace {environment(setup).get('TEMPORAL_NAMESPACE')!r}, {name} uses {namespace!r}"
        )
        assert depends_on(name).get(setup) == "service_completed_successfully", (
            f"{name}: must wait for `{setup}` to complete (the API starts workflows with search attributes)"
        )
