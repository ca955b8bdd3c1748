"""The ConfigMap's gateway.yaml and policies, laid out as the pod sees them, load in production mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from policy.errors import PolicyError
from policy.routing import Match
from proxy.settings import Settings, load_settings
from tests.deploy.support import only

GOOD_DSN = "host=db.internal.example port=5432 dbname=tokengate user=tokengate sslmode=verify-full"
DSN_VAR = "TOKENGATE_AUDIT_POSTGRES_DSN"


def _materialize(root: Path) -> Path:
    """Write the ConfigMap's keys where the deployment's items list mounts them."""
    config_map: Any = only("ConfigMap")
    deployment: Any = only("Deployment")
    volume = next(
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "config"
    )
    for item in volume["configMap"]["items"]:
        target = root / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(config_map["data"][item["key"]], encoding="utf-8")
    return root / "gateway.yaml"


STORES = {
    "TOKENGATE_KEYRING_STORE": "rediss://redis.internal.example:6380/0",
    "TOKENGATE_SESSION_STORE": "rediss://redis.internal.example:6380/1",
}


def _load(tmp_path: Path, dsn: str) -> Settings:
    return load_settings(_materialize(tmp_path), env={DSN_VAR: dsn, **STORES})


def test_config_loads_in_production_mode(tmp_path: Path) -> None:
    settings = _load(tmp_path, GOOD_DSN)
    assert settings.production
    assert settings.gateway.listen.port == 8080
    assert settings.gateway.admin.port == 8081
    assert settings.data_dir == Path("/var/lib/tokengate")
    assert [r.name for r in settings.routes] == ["app"]
    assert dict(settings.route_upstream) == {"app": "app"}
    assert settings.gateway.upstreams["app"].url == "http://127.0.0.1:8000"
    key = settings.gateway.audit.checkpoint_key
    assert key.is_absolute()
    assert key.parent == Path("/etc/tokengate-secrets")


def test_catch_all_route_takes_every_path(tmp_path: Path) -> None:
    router = _load(tmp_path, GOOD_DSN).router
    for method, path in (("GET", "/"), ("POST", "/login"), ("PUT", "/api/users/7")):
        match = router.match("app.example.com", method, path)
        assert isinstance(match, Match), path
        assert match.route.name == "app"


def test_production_checks_really_run(tmp_path: Path) -> None:
    # The twin of the load above: a remote DSN without verify-full is refused.
    with pytest.raises(PolicyError, match="sslmode=verify-full"):
        _load(tmp_path, "host=db.internal.example sslmode=require")


def test_missing_dsn_variable_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=DSN_VAR):
        load_settings(_materialize(tmp_path), env=STORES)
