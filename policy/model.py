"""The policy file model: ``policies/*.yaml``.

A policy file holds routes. Each route says which requests it matches (host,
methods, and exactly one of path / prefix / regex), where they go, and the
limits that apply, and the field rules (:mod:`policy.fields`) of its requests
and responses. Contradictions are rejected at load with a precise message;
rules that need every file (class references, actions) are checked when the
policy is compiled (:mod:`policy.compile`).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from policy.fields import CLASS_NAME, ClassDecl, FieldRule
from policy.templates import compile_regex, parse_prefix, parse_template
from policy.types import Bytes, Duration, StrictModel

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_ROUTE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def check_route_name(v: str) -> str:
    """A route name as every route table spells it (gateway and egress routes)."""
    if not _ROUTE_NAME.match(v):
        raise ValueError("route name must be 1-63 chars of a-z 0-9 _ . - starting alphanumeric")
    return v


def check_tenant(v: str | None) -> str | None:
    """A tenant id as records carry it (None: none)."""
    if v is not None and not _TENANT.match(v):
        raise ValueError("tenant must be 1-64 of A-Z a-z 0-9 _ . : - starting alphanumeric")
    return v


_HOST = re.compile(
    r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


class RouteMatch(StrictModel):
    """What a route matches. Exactly one of ``path``, ``prefix``, ``regex``."""

    host: str | None = Field(
        None, description="exact host (app.example.com) or one left-most wildcard (*.example.com)"
    )
    methods: list[HttpMethod] | None = Field(None, description="methods matched; absent = all")
    path: str | None = Field(None, description="exact path or template like /api/users/{id}")
    prefix: str | None = Field(None, description="path prefix at segment boundaries, like /static")
    regex: str | None = Field(None, description="Python regex that must match the whole path")

    @field_validator("host")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.lower()
        if v == "*" or not _HOST.match(v):
            raise ValueError("host must be a name like app.example.com or *.example.com")
        return v

    @field_validator("methods")
    @classmethod
    def _methods(cls, v: list[HttpMethod] | None) -> list[HttpMethod] | None:
        if v is not None and not v:
            raise ValueError("methods cannot be empty; leave it out to match all methods")
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        if v is not None:
            parse_template(v)
        return v

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str | None) -> str | None:
        if v is not None:
            parse_prefix(v)
        return v

    @field_validator("regex")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            compile_regex(v)
        return v

    @model_validator(mode="after")
    def _exactly_one(self) -> RouteMatch:
        given = [k for k in ("path", "prefix", "regex") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of path, prefix or regex")
        return self


class RouteTimeouts(StrictModel):
    """Upstream timeouts for one route; absent values come from the upstream."""

    connect: Duration | None = Field(None, description="time to open the upstream connection")
    read: Duration | None = Field(None, description="longest silence while reading upstream")


class AuthRule(StrictModel):
    """Who may use a route: a session (or an API key) with these properties."""

    require: Literal["session", "api_key"] = Field(
        "session", description="how callers authenticate: a gateway session or an admin API key"
    )
    roles: list[str] = Field(
        default_factory=list, description="the caller needs at least one of these roles"
    )
    claims: dict[str, str] = Field(
        default_factory=dict,
        description="session claims that must equal these values (tenant, ...)",
    )
    mfa: bool = Field(False, description="the session must have passed MFA")
    max_age: Duration | None = Field(
        None, description="authentication (auth_time) must be at most this old: step-up otherwise"
    )
    acr: str | None = Field(None, description="required authentication context class (acr)")
    sign_body: bool = Field(
        False, description="buffer the body (within max_body) so the signature covers its digest"
    )

    @field_validator("claims")
    @classmethod
    def _claims(cls, v: dict[str, str]) -> dict[str, str]:
        reserved = {
            "sub",
            "sid",
            "iat",
            "exp",
            "nbf",
            "jti",
            "iss",
            "aud",
            "auth_time",
            "amr",
            "acr",
        }
        if bad := sorted(set(v) & reserved):
            raise ValueError(
                f"claims cannot constrain {', '.join(bad)}: use roles, mfa, max_age or acr"
            )
        return v

    @model_validator(mode="after")
    def _consistent(self) -> AuthRule:
        if self.require == "api_key" and (self.mfa or self.max_age is not None or self.acr):
            raise ValueError("mfa, max_age and acr apply to sessions, not to api_key routes")
        return self


class Route(StrictModel):
    """One route: a match, a destination and its limits."""

    name: str = Field(description="unique route name, used in logs and metrics")
    match: RouteMatch = Field(description="which requests this route takes")
    priority: int = Field(0, description="higher wins before any specificity rule")
    upstream: str | None = Field(
        None, description="upstream name from gateway.yaml; default: the default upstream"
    )
    timeouts: RouteTimeouts = Field(default_factory=RouteTimeouts, description="per-route timeouts")
    max_body: Bytes | None = Field(None, description="request body limit; default: limits.max_body")
    websocket: bool = Field(False, description="allow WebSocket upgrades on this route")
    auth: AuthRule | None = Field(None, description="who may use this route")
    allow_unauthenticated: bool = Field(
        False, description="serve this route to anyone, without a session (exclusive with auth)"
    )
    tenant: str | None = Field(
        None,
        description="unauthenticated routes: tenant of the records their field rules make",
    )
    request: list[FieldRule] = Field(
        default_factory=list, description="field rules applied to requests, in order"
    )
    response: list[FieldRule] = Field(
        default_factory=list, description="field rules applied to responses, in order"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_route_name(v)

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, v: str | None) -> str | None:
        return check_tenant(v)

    @model_validator(mode="after")
    def _fields_consistent(self) -> Route:
        if self.tenant is not None and not self.allow_unauthenticated:
            raise ValueError(
                f"route '{self.name}' names a tenant but is not public: "
                "a session's records take the session's tenant"
            )
        if self.websocket and (self.request or self.response):
            raise ValueError(
                f"route '{self.name}' allows websocket upgrades, whose messages field rules "
                "cannot read: put the field rules on a separate route"
            )
        return self

    @model_validator(mode="after")
    def _auth_declared(self) -> Route:
        # Default deny: a route either names how callers authenticate, or says
        # out loud that it serves everyone. Never both, never neither.
        if self.auth is not None and self.allow_unauthenticated:
            raise ValueError(
                f"route '{self.name}' is public (allow_unauthenticated) but has an auth rule"
            )
        if self.auth is None and not self.allow_unauthenticated:
            raise ValueError(
                f"route '{self.name}' has no auth rule: add auth: or set "
                "allow_unauthenticated: true to serve it without a session"
            )
        return self


class PolicyFile(StrictModel):
    """A ``policies/*.yaml`` file."""

    classes: dict[str, ClassDecl] = Field(
        default_factory=dict,
        description="field classes (ssn, pan, email, ...), declared once across all files",
    )
    routes: list[Route] = Field(
        default_factory=list, description="routes, any order; precedence is explicit"
    )

    @field_validator("classes")
    @classmethod
    def _class_names(cls, v: dict[str, ClassDecl]) -> dict[str, ClassDecl]:
        if bad := sorted(name for name in v if not CLASS_NAME.match(name)):
            raise ValueError(
                f"class name '{bad[0]}' must be 1-32 of a-z 0-9 _ starting with a letter"
            )
        return v
