"""deploy/kubernetes/: every core resource against Kubernetes' own schemas (bundled with
kubernetes-validate, offline, strict: unknown fields are errors), the Prometheus Operator
resources against small schemas of our own, and the ties between resources that no schema sees:
selectors, named ports, probe paths, grace periods, the uid of the image, and the config each
variant mounts, parsed by sftriggerd itself."""

from __future__ import annotations

import base64
import copy
import functools
import re
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from kubernetes_validate.utils import latest_version

from sftriggerd.config import parse_settings
from sftriggerd.config.settings import Settings
from tests.deploy.manifests import (
    DOCKERFILE,
    KUBERNETES,
    Resource,
    by_kind,
    dockerfile_instructions,
    resources_under,
    yaml_documents,
)
from tests.keys import rsa_key_pair

# The oldest and the newest Kubernetes whose schemas kubernetes-validate bundles.
KUBERNETES_VERSIONS = ("1.25", latest_version())
OPERATOR_GROUP = "monitoring.coreos.com/"
VARIANTS = ("sqlite", "postgresql")

SECRET_EXAMPLE = KUBERNETES / "secret.example.yaml"
ALL = resources_under(KUBERNETES)
CORE = [(path, doc) for path, doc in ALL if not doc["apiVersion"].startswith(OPERATOR_GROUP)]
OPERATOR = [(path, doc) for path, doc in ALL if doc["apiVersion"].startswith(OPERATOR_GROUP)]


def _id(item: tuple[Path, Resource]) -> str:
    path, doc = item
    return f"{path.relative_to(KUBERNETES)}:{doc['kind']}"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("item", CORE, ids=[_id(item) for item in CORE])
def test_core_resources_match_the_kubernetes_schema(
    item: tuple[Path, Resource], version: str
) -> None:
    kubernetes_validate.validate(item[1], version, strict=True)


def test_the_schema_check_catches_a_misspelt_field() -> None:
    deployment = copy.deepcopy(by_kind(KUBERNETES / "sqlite")["Deployment"])
    deployment["spec"]["replica"] = deployment["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, latest_version(), strict=True)


# The parts of the Prometheus Operator's CRDs that these files use; anything else is a typo.
_DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
}
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string"}, "labels": _LABELS},
    "additionalProperties": False,
}
SCHEMAS: dict[str, dict[str, Any]] = {
    "ServiceMonitor": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "ServiceMonitor"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["selector", "endpoints"],
                "additionalProperties": False,
                "properties": {
                    "selector": {
                        "type": "object",
                        "required": ["matchLabels"],
                        "properties": {"matchLabels": _LABELS},
                        "additionalProperties": False,
                    },
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["port", "path"],
                            "additionalProperties": False,
                            "properties": {
                                "port": {"type": "string"},
                                "path": {"type": "string", "pattern": "^/"},
                                "interval": _DURATION,
                                "scrapeTimeout": _DURATION,
                                "honorLabels": {"type": "boolean"},
                            },
                        },
                    },
                },
            },
        },
    },
    "PrometheusRule": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "PrometheusRule"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "required": ["groups"],
                "additionalProperties": False,
                "properties": {
                    "groups": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name", "rules"],
                            "additionalProperties": False,
                            "properties": {
                                "name": {"type": "string"},
                                "rules": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["alert", "expr"],
                                        "additionalProperties": False,
                                        "properties": {
                                            "alert": {"type": "string"},
                                            "expr": {"type": "string"},
                                            "for": _DURATION,
                                            "labels": _LABELS,
                                            "annotations": _LABELS,
                                        },
                                    },
                                },
                            },
                        },
                    }
                },
            },
        },
    },
}


@pytest.mark.parametrize("item", OPERATOR, ids=[_id(item) for item in OPERATOR])
def test_prometheus_operator_resources_match_their_schema(item: tuple[Path, Resource]) -> None:
    doc = item[1]
    assert doc["kind"] in SCHEMAS, f"no schema for {doc['kind']}"
    jsonschema.Draft202012Validator(SCHEMAS[doc["kind"]]).validate(doc)


def test_every_kind_of_resource_is_checked() -> None:
    kinds = {doc["kind"] for _, doc in ALL}
    assert {"Deployment", "ConfigMap", "Secret", "Service", "PodDisruptionBudget"} <= kinds
    assert {"PersistentVolumeClaim", "ServiceMonitor", "PrometheusRule"} <= kinds


# --- one variant's resources, tied together ---------------------------------------------------


ENV_SECRET = "sftriggerd-secrets"
POD_NAME_EXAMPLE = "sftriggerd-5d8f7c9b4-x2x7q"
KEY_SECRET = "sftriggerd-salesforce-key"


def example_secrets() -> dict[str, Resource]:
    """The example Secrets by name: the environment one (envFrom) and the JWT key (a volume)."""
    secrets = {doc["metadata"]["name"]: doc for doc in yaml_documents(SECRET_EXAMPLE)}
    assert set(secrets) == {ENV_SECRET, KEY_SECRET}
    assert all(doc["kind"] == "Secret" for doc in secrets.values())
    return secrets


def variant(name: str) -> dict[str, Resource]:
    resources = by_kind(KUBERNETES / name)
    resources.update(by_kind(KUBERNETES / "monitoring"))
    secrets = example_secrets()
    resources["Secret"] = secrets[ENV_SECRET]
    resources["KeySecret"] = secrets[KEY_SECRET]
    return resources


def container(resources: dict[str, Resource]) -> dict[str, Any]:
    (only,) = resources["Deployment"]["spec"]["template"]["spec"]["containers"]
    return dict(only)


def mounted_settings(resources: dict[str, Resource]) -> Settings:
    """The ConfigMap's config.yaml as sftriggerd reads it, with the example Secret's keys in the
    environment (placeholder values; a missing key fails here)."""
    secret_keys = resources["Secret"]["stringData"]
    env = dict.fromkeys(secret_keys, "placeholder")
    env["CRM_SYNC_SECRET"] = "whsec_" + base64.b64encode(b"0123456789abcdef").decode()
    env["SFTRIGGERD_STORE_URL"] = "postgresql://sftriggerd:pw@db:5432/sftriggerd"
    for variable in container(resources).get("env", []):
        # A downward API value (the pod's name) exists only in a running pod: a likely one.
        env[variable["name"]] = variable.get("value", POD_NAME_EXAMPLE)
    text = resources["ConfigMap"]["data"]["config.yaml"]
    with tempfile.TemporaryDirectory() as pod_root:
        # The mounted Secret volumes, written where the pod would see them (under pod_root).
        for mount_path, files in secret_files(resources).items():
            folder = Path(pod_root + mount_path)
            folder.mkdir(parents=True)
            for file_name, content in files.items():
                (folder / file_name).write_text(content)
            text = text.replace("${file:" + mount_path + "/", "${file:" + str(folder) + "/")
        return parse_settings(text, source="ConfigMap config.yaml", environ=env)


@functools.cache
def throwaway_key() -> str:
    """One key for the whole module, so both variants' settings compare equal."""
    return rsa_key_pair()[0]


def secret_files(resources: dict[str, Resource]) -> dict[str, dict[str, str]]:
    """Each Secret volume's mount path and the files in it, from the example Secrets (a real
    throwaway PEM key in place of the placeholder)."""
    pod = resources["Deployment"]["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    secrets = example_secrets()
    found: dict[str, dict[str, str]] = {}
    for mount in container(resources)["volumeMounts"]:
        source = volumes[mount["name"]].get("secret")
        if source is None:
            continue
        data = secrets[source["secretName"]]["stringData"]
        found[mount["mountPath"]] = {
            name: throwaway_key() if "PRIVATE KEY" in value else value
            for name, value in data.items()
        }
    return found


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


@pytest.mark.parametrize("name", VARIANTS)
def test_selectors_and_named_ports_tie_together(name: str) -> None:
    resources = variant(name)
    deployment, service = resources["Deployment"], resources["Service"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels_match(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    assert labels_match(service["spec"]["selector"], pod_labels)
    assert labels_match(
        resources["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"], pod_labels
    )
    monitor = resources["ServiceMonitor"]["spec"]
    assert labels_match(monitor["selector"]["matchLabels"], service["metadata"]["labels"])

    port_names = {port["name"] for port in container(resources)["ports"]}
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= port_names
    service_ports = {port["name"] for port in service["spec"]["ports"]}
    assert {endpoint["port"] for endpoint in monitor["endpoints"]} <= service_ports
    assert monitor["endpoints"][0]["path"] == "/metrics"


@pytest.mark.parametrize("name", VARIANTS)
def test_probes_reach_the_admin_server_the_config_opens(name: str) -> None:
    resources = variant(name)
    settings = mounted_settings(resources)
    main = container(resources)
    (admin_port,) = main["ports"]
    assert settings.server.host in ("0.0.0.0", "::"), "probes cannot reach a loopback listener"
    assert admin_port["containerPort"] == settings.server.port
    probes = {kind: main[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe")}
    probes["readinessProbe"] = main["readinessProbe"]["httpGet"]
    assert {kind: probe["path"] for kind, probe in probes.items()} == {
        "startupProbe": "/healthz",
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    assert {probe["port"] for probe in probes.values()} == {admin_port["name"]}


@pytest.mark.parametrize("name", VARIANTS)
def test_termination_grace_covers_prestop_and_the_drain(name: str) -> None:
    resources = variant(name)
    pod = resources["Deployment"]["spec"]["template"]["spec"]
    command = container(resources)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    drain_s = mounted_settings(resources).server.shutdown_grace.total_seconds()
    # The dispatcher drains for shutdown_grace and releases its claims about 1s later.
    assert pod["terminationGracePeriodSeconds"] >= int(command[1]) + drain_s + 1 + 5


def image_uid() -> int:
    users = [
        args
        for keyword, args in dockerfile_instructions(DOCKERFILE.read_text())
        if keyword == "USER"
    ]
    return int(users[-1].split(":")[0])


@pytest.mark.parametrize("name", VARIANTS)
def test_pod_runs_locked_down_as_the_image_user(name: str) -> None:
    resources = variant(name)
    pod = resources["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == image_uid()
    assert pod["securityContext"]["fsGroup"] == image_uid()
    assert pod["automountServiceAccountToken"] is False
    main = container(resources)
    assert main["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"cpu", "memory"} <= set(main["resources"]["requests"])
    assert "memory" in main["resources"]["limits"]
    assert not main["image"].endswith(":latest") and ":" in main["image"]


@pytest.mark.parametrize("name", VARIANTS)
def test_the_config_and_secrets_are_where_the_command_reads_them(name: str) -> None:
    resources = variant(name)
    main = container(resources)
    pod = resources["Deployment"]["spec"]["template"]["spec"]
    config_path = Path(main["args"][main["args"].index("--config") + 1])
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    (mount,) = [m for m in main["volumeMounts"] if "configMap" in volumes[m["name"]]]
    assert volumes[mount["name"]]["configMap"]["name"] == resources["ConfigMap"]["metadata"]["name"]
    assert Path(mount["mountPath"]) / "config.yaml" == config_path
    assert mount["readOnly"] is True
    (source,) = main["envFrom"]
    assert source["secretRef"]["name"] == resources["Secret"]["metadata"]["name"]
    for secret in (resources["Secret"], resources["KeySecret"]):
        assert all(
            "REPLACE_ME" in str(value) or value == "" for value in secret["stringData"].values()
        ), f"the example Secret {secret['metadata']['name']} holds a real value"


@pytest.mark.parametrize("name", VARIANTS)
def test_the_jwt_key_is_a_file_from_a_mounted_secret_not_the_environment(name: str) -> None:
    resources = variant(name)
    settings = mounted_settings(resources)
    auth = settings.salesforce.auth
    assert auth.flow == "jwt" and auth.password is None and auth.client_secret is None
    assert auth.private_key is not None
    assert auth.private_key.get_secret_value().startswith("-----BEGIN PRIVATE KEY-----")
    config_text = resources["ConfigMap"]["data"]["config.yaml"]
    (key_path,) = re.findall(r"private_key: \$\{file:([^}]+)\}", config_text)
    mounted = {
        f"{mount_path}/{file_name}"
        for mount_path, files in secret_files(resources).items()
        for file_name in files
    }
    assert key_path in mounted
    pod = resources["Deployment"]["spec"]["template"]["spec"]
    (key_volume,) = [v for v in pod["volumes"] if "secret" in v]
    assert key_volume["secret"]["secretName"] == resources["KeySecret"]["metadata"]["name"]
    # Readable by the pod's group (fsGroup), by nobody else, and never in the environment.
    assert key_volume["secret"]["defaultMode"] == 0o440
    assert "sf-jwt.key" not in resources["Secret"]["stringData"]
    assert not any("PRIVATE KEY" in str(v) for v in resources["Secret"]["stringData"].values())


def test_sqlite_is_one_replica_recreated_on_its_volume() -> None:
    resources = variant("sqlite")
    spec = resources["Deployment"]["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    claim = resources["PersistentVolumeClaim"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    (state,) = [
        m
        for m in container(resources)["volumeMounts"]
        if "persistentVolumeClaim" in volumes[m["name"]]
    ]
    assert volumes[state["name"]]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    settings = mounted_settings(resources)
    assert settings.store.engine == "sqlite"
    assert Path(settings.store.url.removeprefix("sqlite:///")).parent == Path(state["mountPath"])
    # A budget of minAvailable: 1 would block every node drain forever.
    assert resources["PodDisruptionBudget"]["spec"] == {
        "maxUnavailable": 1,
        "selector": resources["PodDisruptionBudget"]["spec"]["selector"],
    }


def test_postgresql_is_three_replicas_rolled_one_at_a_time() -> None:
    spec = variant("postgresql")["Deployment"]["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1},
    }


def test_postgresql_budget_keeps_two_running_and_still_lets_a_node_drain() -> None:
    resources = variant("postgresql")
    budget = resources["PodDisruptionBudget"]["spec"]
    assert budget["minAvailable"] == 2 and "maxUnavailable" not in budget
    # At replicas or above, no pod could ever be evicted and every node drain would stall.
    assert budget["minAvailable"] < resources["Deployment"]["spec"]["replicas"]


def test_postgresql_pods_keep_no_state_of_their_own() -> None:
    resources = variant("postgresql")
    assert "PersistentVolumeClaim" not in resources
    volumes = resources["Deployment"]["spec"]["template"]["spec"]["volumes"]
    kinds = {kind for volume in volumes for kind in volume if kind != "name"}
    assert kinds <= {"configMap", "secret", "emptyDir"}
    (scratch,) = [volume for volume in volumes if "emptyDir" in volume]
    mounted_at = {m["name"]: m["mountPath"] for m in container(resources)["volumeMounts"]}
    assert mounted_at[scratch["name"]] == "/tmp"


def test_postgresql_store_url_and_its_password_come_from_the_secret() -> None:
    resources = variant("postgresql")
    config = resources["ConfigMap"]["data"]["config.yaml"]
    assert re.search(r"^\s+url: \$\{SFTRIGGERD_STORE_URL\}$", config, re.MULTILINE)
    assert resources["Secret"]["stringData"]["SFTRIGGERD_STORE_URL"].startswith("postgresql://")
    (source,) = container(resources)["envFrom"]
    assert source["secretRef"]["name"] == ENV_SECRET
    assert mounted_settings(resources).store.engine == "postgresql"


def test_postgresql_replicas_prefer_a_node_each() -> None:
    resources = variant("postgresql")
    pod = resources["Deployment"]["spec"]["template"]
    anti = pod["spec"]["affinity"]["podAntiAffinity"]
    # Required would leave a replica Pending on a cluster with fewer nodes than replicas.
    assert set(anti) == {"preferredDuringSchedulingIgnoredDuringExecution"}
    (preferred,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    term = preferred["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert labels_match(term["labelSelector"]["matchLabels"], pod["metadata"]["labels"])
    assert preferred["weight"] == 100


def test_postgresql_replicas_are_named_after_their_pods() -> None:
    resources = variant("postgresql")
    env = {variable["name"]: variable for variable in container(resources)["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    ha = mounted_settings(resources).ha
    assert ha.resolved_replica_name == POD_NAME_EXAMPLE


def test_postgresql_ha_settings_are_in_force() -> None:
    resources = variant("postgresql")
    settings = mounted_settings(resources)
    assert "ha" in settings.model_fields_set
    assert settings.ha.wake_ups == "notify"
    assert settings.ha.resolved_renew_every * 2 < settings.ha.takeover
    # The grace covers the drain, after which the leases are handed over.
    pod = resources["Deployment"]["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > settings.server.shutdown_grace.total_seconds()


def test_postgresql_connection_count_in_the_config_is_the_arithmetic() -> None:
    resources = variant("postgresql")
    spec = resources["Deployment"]["spec"]
    pods = spec["replicas"] + spec["strategy"]["rollingUpdate"]["maxSurge"]
    per_pod = mounted_settings(resources).store.pool_size + 1  # + the listening connection
    config = resources["ConfigMap"]["data"]["config.yaml"]
    assert f"{pods} x {per_pod} = {pods * per_pod} at most" in config


def test_the_two_configs_differ_only_in_the_store_and_ha() -> None:
    sqlite, postgresql = (mounted_settings(variant(name)) for name in VARIANTS)
    # ha has no effect on one SQLite replica; the sqlite variant leaves it out.
    assert "ha" not in sqlite.model_fields_set
    excluded = {"store", "ha"}
    assert sqlite.model_dump(exclude=excluded) == postgresql.model_dump(exclude=excluded)
    assert sqlite.store.retention == postgresql.store.retention
