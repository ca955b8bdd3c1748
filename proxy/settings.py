"""Loading gateway.yaml plus policies/*.yaml into one validated, compiled snapshot.

A :class:`Settings` is immutable and complete: the router is compiled, every
route's upstream resolved, every cross-file rule checked. Reload builds a new
snapshot and swaps it in only when it is whole; a failure raises PolicyError
listing every problem as ``FILE: YAML.PATH: problem``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from plugins.base import FieldClass
from policy.compile import RouteFields, compile_classes, compile_fields
from policy.errors import PolicyError
from policy.model import PolicyFile, Route
from policy.routing import Router
from policy.yamlio import load_model
from proxy.config import GatewayConfig


@dataclass(frozen=True, slots=True)
class Settings:
    """One consistent, validated configuration."""

    gateway: GatewayConfig
    config_path: Path
    data_dir: Path
    routes: tuple[Route, ...]
    router: Router
    route_upstream: Mapping[str, str]  # route name -> upstream name
    route_fields: Mapping[str, RouteFields]  # route name -> field rules (routes with any)
    classes: Mapping[str, FieldClass]  # field classes declared in the policies
    files: tuple[Path, ...]
    digest: str  # sha256 over every file read, in order

    @property
    def production(self) -> bool:
        """Whether insecure defaults are start-up errors."""
        return self.gateway.mode == "production"


def _label(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def policy_paths(gateway: GatewayConfig, base: Path) -> list[Path]:
    """Policy files named by the globs, sorted, without duplicates."""
    found: dict[Path, None] = {}
    for pattern in gateway.policies:
        if Path(pattern).is_absolute():
            matches = sorted(Path("/").glob(pattern.lstrip("/")))
        else:
            matches = sorted(base.glob(pattern))
        for p in matches:
            if p.is_file():
                found[p.absolute()] = None
    return sorted(found)


@dataclass(frozen=True, slots=True)
class LoadedPolicies:
    """Every route, its upstream, and its compiled field rules."""

    routes: list[Route]
    upstream_of: dict[str, str]
    fields: dict[str, RouteFields]
    classes: dict[str, FieldClass]


def load_policies(
    paths: list[Path], base: Path, gateway: GatewayConfig, env: Mapping[str, str] | None
) -> LoadedPolicies:
    """Validate every policy file and compile its field rules; collect all problems first."""
    problems: list[str] = []
    files: list[tuple[str, PolicyFile]] = []
    routes: list[Route] = []
    owner: dict[str, str] = {}
    upstream_of: dict[str, str] = {}
    for path in paths:
        label = _label(path, base)
        try:
            policy = load_model(PolicyFile, path, label=label, env=env)
        except PolicyError as e:
            problems.extend(e.problems)
            continue
        files.append((label, policy))
        for i, route in enumerate(policy.routes):
            where = f"{label}: routes[{i}]"
            if route.name in owner:
                problems.append(
                    f"{where}.name: route '{route.name}' is already declared in {owner[route.name]}"
                )
                continue
            owner[route.name] = label
            upstream = gateway.upstream_for(route.upstream)
            if upstream is None:
                problems.append(
                    f"{where}.upstream: "
                    + (
                        f"unknown upstream '{route.upstream}'"
                        if route.upstream
                        else "no upstream named and no default_upstream in gateway.yaml"
                    )
                )
                continue
            upstream_of[route.name] = upstream
            routes.append(route)
    if problems:
        raise PolicyError(problems)
    compiled = compile_fields(files)
    fields = {
        name: f for name, f in compiled.items() if f.request is not None or f.response is not None
    }
    return LoadedPolicies(routes, upstream_of, fields, compile_classes(files))


def _tee_rules(fields: Mapping[str, RouteFields]) -> list[str]:
    """Routes whose field rules use the ``tee`` action."""
    return [
        name
        for name, f in fields.items()
        if any(
            type(rule.action).name == "tee"
            for t in (f.request, f.response)
            if t is not None
            for rule in t.rules
        )
    ]


def load_settings(config_path: Path, *, env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate gateway.yaml and its policies into a :class:`Settings`."""
    # absolute(), not resolve(): a Kubernetes ConfigMap mount swaps a symlinked
    # directory on update, and a resolved path would keep pointing at the old one.
    config_path = config_path.absolute()
    base = config_path.parent
    gateway = load_model(GatewayConfig, config_path, label=config_path.name, env=env)
    paths = policy_paths(gateway, base)
    loaded = load_policies(paths, base, gateway, env)
    routes, upstream_of = loaded.routes, loaded.upstream_of
    login = gateway.sessions.login
    if login is not None and login.route not in upstream_of:
        raise PolicyError(
            [f"{config_path.name}: sessions.login.route: no route named '{login.route}'"]
        )
    if gateway.tee is None and (uses := _tee_rules(loaded.fields)):
        raise PolicyError(
            [
                f"policies: route '{route}' uses the tee action, but {config_path.name} has "
                "no tee: section (the TEE pool)"
                for route in uses
            ]
        )
    try:
        router = Router.compile(routes)
    except ValueError as e:
        raise PolicyError([f"policies: {e}"]) from e
    digest = hashlib.sha256()
    files = (config_path, *paths)
    for f in files:
        digest.update(str(f).encode() + b"\0" + f.read_bytes() + b"\0")
    data_dir = gateway.data_dir if gateway.data_dir.is_absolute() else base / gateway.data_dir
    settings = Settings(
        gateway=gateway,
        config_path=config_path,
        data_dir=data_dir,
        routes=tuple(routes),
        router=router,
        route_upstream=upstream_of,
        route_fields=loaded.fields,
        classes=loaded.classes,
        files=files,
        digest=digest.hexdigest(),
    )
    if settings.production:
        from proxy.production import production_problems

        if problems := production_problems(settings):
            raise PolicyError(problems)
    return settings
