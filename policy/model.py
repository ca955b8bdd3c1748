"""The policy file model: ``policies/*.yaml``.

A policy file holds routes. Each route says which requests it matches (host,
methods, and exactly one of path / prefix / regex), where they go, and the
limits that apply. Contradictions are rejected at load with a precise message.
Later capabilities (sessions, field rules) add their keys here.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from policy.templates import compile_regex, parse_prefix, parse_template
from policy.types import Bytes, Duration, StrictModel

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_ROUTE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
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

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _ROUTE_NAME.match(v):
            raise ValueError("route name must be 1-63 chars of a-z 0-9 _ . - starting alphanumeric")
        return v

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

    routes: list[Route] = Field(
        default_factory=list, description="routes, any order; precedence is explicit"
    )
