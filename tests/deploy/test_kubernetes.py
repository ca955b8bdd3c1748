"""The Kubernetes manifests: schema-valid (strict, offline) and locked down."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.support import (
    DOCKERFILE,
    K8S_DIR,
    manifests,
    only,
    run_probe,
    secret_looking,
    status_server,
)

K8S_VERSION = kubernetes_validate.latest_version()
EXPECTED_KINDS = {"ConfigMap", "Deployment", "NetworkPolicy", "Secret", "Service", "ServiceAccount"}


def _validate(doc: dict[str, Any]) -> None:
    # SchemaNotFoundError propagates: an unknown kind is a failure, not a warning.
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def _pod() -> dict[str, Any]:
    deployment: Any = only("Deployment")
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def _container(name: str) -> dict[str, Any]:
    return next(c for c in _pod()["containers"] if c["name"] == name)


def _volume(name: str) -> dict[str, Any]:
    return next(v for v in _pod()["volumes"] if v["name"] == name)


def _mount(container: dict[str, Any], path: str) -> dict[str, Any]:
    return next(m for m in container["volumeMounts"] if m["mountPath"] == path)


def _port(container: dict[str, Any], name: str) -> int:
    return int(next(p for p in container["ports"] if p["name"] == name)["containerPort"])


def _gateway_config() -> dict[str, Any]:
    config_map: Any = only("ConfigMap")
    loaded: dict[str, Any] = yaml.safe_load(config_map["data"]["gateway.yaml"])
    return loaded


def test_every_expected_kind_is_present_once() -> None:
    kinds = [str(doc["kind"]) for _, doc in manifests()]
    assert sorted(kinds) == sorted(EXPECTED_KINDS)


@pytest.mark.parametrize(
    "doc", [doc for _, doc in manifests()], ids=lambda d: f"{d['kind']}/{d['metadata']['name']}"
)
def test_manifest_passes_strict_schema_validation(doc: dict[str, Any]) -> None:
    _validate(doc)


def _broken_deployments() -> list[dict[str, Any]]:
    base: Any = only("Deployment")
    typo = copy.deepcopy(base)
    typo["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    wrong_type = copy.deepcopy(base)
    wrong_type["spec"]["replicas"] = "one"
    missing = copy.deepcopy(base)
    del missing["spec"]["selector"]
    return [typo, wrong_type, missing]


@pytest.mark.parametrize("doc", _broken_deployments(), ids=["typo", "wrong-type", "missing"])
def test_strict_validation_rejects_a_broken_deployment(doc: dict[str, Any]) -> None:
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(doc)


def test_unknown_kind_is_an_error_not_a_warning() -> None:
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        _validate({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})


def test_pod_runs_non_root_with_seccomp_and_no_api_token() -> None:
    pod = _pod()
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] > 0
    assert security["runAsGroup"] > 0
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    service_account: Any = only("ServiceAccount")
    assert service_account["automountServiceAccountToken"] is False
    for key in ("hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace"):
        assert not pod.get(key, False)
    assert all("hostPath" not in v for v in pod["volumes"])


def test_dockerfile_user_matches_the_pod_user() -> None:
    user_line = next(
        line
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.startswith("USER ")
    )
    uid, gid = user_line.split()[1].split(":")
    security = _pod()["securityContext"]
    assert (security["runAsUser"], security["runAsGroup"]) == (int(uid), int(gid))


@pytest.mark.parametrize("name", ["app", "tokengate"])
def test_container_is_locked_down(name: str) -> None:
    container = _container(name)
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["privileged"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    for bound in ("requests", "limits"):
        assert set(container["resources"][bound]) == {"cpu", "memory"}
    image = container["image"]
    assert ":" in image
    assert not image.endswith(":latest")
    # A read-only root needs a writable /tmp of its own.
    tmp = _volume(_mount(container, "/tmp")["name"])
    assert tmp["emptyDir"]["medium"] == "Memory"


def test_containers_do_not_share_tmp() -> None:
    assert (
        _mount(_container("app"), "/tmp")["name"] != _mount(_container("tokengate"), "/tmp")["name"]
    )


def test_gateway_ports_and_probes_on_the_admin_listener() -> None:
    gateway = _container("tokengate")
    config = _gateway_config()
    assert _port(gateway, "http") == config["listen"]["port"] == 8080
    assert _port(gateway, "admin") == config["admin"]["port"] == 8081
    probes = {
        kind: gateway[kind]["httpGet"]
        for kind in ("livenessProbe", "readinessProbe", "startupProbe")
    }
    assert probes["livenessProbe"]["path"] == "/.tokengate/healthz"
    assert probes["startupProbe"]["path"] == "/.tokengate/healthz"
    assert probes["readinessProbe"]["path"] == "/.tokengate/readyz"
    for probe in probes.values():
        assert probe["port"] == "admin"
    assert gateway["args"] == ["serve", "--config", "/etc/tokengate/gateway.yaml"]


def _flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_app_binds_to_loopback_and_the_gateway_points_at_it() -> None:
    app = _container("app")
    assert "ports" not in app  # nothing to publish: the app is not reachable from outside
    args = app["args"]
    assert _flag(args, "--host") == "127.0.0.1"
    upstream = _gateway_config()["upstreams"]["app"]["url"]
    assert upstream == f"http://127.0.0.1:{_flag(args, '--port')}"


def _exec_probe(kind: str) -> list[str]:
    command: list[str] = _container("app")[kind]["exec"]["command"]
    return command


@pytest.mark.parametrize("kind", ["livenessProbe", "readinessProbe"])
def test_app_probe_passes_when_the_app_answers(kind: str) -> None:
    argv = _exec_probe(kind)
    assert "http://127.0.0.1:8000/healthz" in argv[2]
    with status_server("/healthz", 200) as port:
        patched = [*argv[:2], argv[2].replace("127.0.0.1:8000", f"127.0.0.1:{port}")]
        assert run_probe(patched) == 0


@pytest.mark.parametrize("kind", ["livenessProbe", "readinessProbe"])
def test_app_probe_fails_when_the_app_does_not(kind: str) -> None:
    argv = _exec_probe(kind)
    with status_server("/healthz", 503) as port:
        patched = [*argv[:2], argv[2].replace("127.0.0.1:8000", f"127.0.0.1:{port}")]
        assert run_probe(patched) != 0


def test_config_and_secrets_are_mounted_read_only() -> None:
    gateway = _container("tokengate")
    config_mount = _mount(gateway, "/etc/tokengate")
    assert config_mount["readOnly"] is True
    config_map: Any = only("ConfigMap")
    assert _volume(config_mount["name"])["configMap"]["name"] == config_map["metadata"]["name"]
    secret_mount = _mount(gateway, "/etc/tokengate-secrets")
    assert secret_mount["readOnly"] is True
    secret_volume = _volume(secret_mount["name"])["secret"]
    secret: Any = only("Secret")
    assert secret_volume["secretName"] == secret["metadata"]["name"]
    assert secret_volume["defaultMode"] & 0o007 == 0  # nothing for "others"


def test_every_config_key_is_mounted_where_the_gateway_looks() -> None:
    config_map: Any = only("ConfigMap")
    items = _volume("config")["configMap"]["items"]
    mapped = {item["key"]: item["path"] for item in items}
    assert set(mapped) == set(config_map["data"])
    assert mapped.pop("gateway.yaml") == "gateway.yaml"
    for key, path in mapped.items():
        assert key.startswith("policies.")
        assert path == "policies/" + key.removeprefix("policies.")
    assert _gateway_config()["policies"] == ["policies/*.yaml"]


def test_data_dir_is_a_mounted_volume() -> None:
    data_dir = _gateway_config()["data_dir"]
    assert "emptyDir" in _volume(_mount(_container("tokengate"), data_dir)["name"])
    app = _container("app")
    assert "emptyDir" in _volume(_mount(app, _flag(app["args"], "--data-dir"))["name"])


def test_service_exposes_only_the_public_port() -> None:
    service: Any = only("Service")
    spec = service["spec"]
    assert spec["type"] == "ClusterIP"
    assert len(spec["ports"]) == 1
    target = spec["ports"][0]["targetPort"]
    resolved = _port(_container("tokengate"), target) if isinstance(target, str) else target
    assert resolved == 8080
    labels = _pod_labels()
    assert all(labels.get(k) == v for k, v in spec["selector"].items())


def _pod_labels() -> dict[str, str]:
    deployment: Any = only("Deployment")
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def test_network_policy_admits_only_the_public_port() -> None:
    policy: Any = only("NetworkPolicy")
    spec = policy["spec"]
    labels = _pod_labels()
    assert all(labels.get(k) == v for k, v in spec["podSelector"]["matchLabels"].items())
    assert "Ingress" in spec["policyTypes"]
    ports = [port for rule in spec["ingress"] for port in rule["ports"]]
    assert ports == [{"protocol": "TCP", "port": 8080}]
    for rule in spec["ingress"]:
        assert rule.get("from"), "an ingress rule without 'from' admits every pod"


def test_secret_ships_empty() -> None:
    secret: Any = only("Secret")
    assert not secret.get("data")
    assert not secret.get("stringData")


def test_secret_values_come_from_the_secret_not_the_manifest() -> None:
    secret: Any = only("Secret")
    for container in _pod()["containers"]:
        for env in container.get("env", []):
            assert "value" not in env, env["name"]
            assert env["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]
    dsn = _gateway_config()["audit"]["postgres"]["dsn"]
    assert dsn == "${TOKENGATE_AUDIT_POSTGRES_DSN}"


@pytest.mark.parametrize("path", [*sorted(K8S_DIR.glob("*")), DOCKERFILE], ids=lambda p: p.name)
def test_no_key_material_in_the_files(path: Path) -> None:
    assert secret_looking(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "text",
    [
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n",
        "key: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "data:\n  root.key: q83vEjRWeJASNFZ4kBI0VniQEjRWeJASNFZ4kBI0Vng=\n",
        "token: Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1u",
    ],
)
def test_key_material_scanner_catches_keys(text: str) -> None:
    assert secret_looking(text) != []
