"""What the tokenization benchmark sends and how its gateways are configured (no IO).

Two gateways per vault backend, identical but for the field rules:

- ``passthrough``: routes ``POST /ingest`` and ``GET /list`` with ``auth: {}``
  and no field rules (bodies stream through untouched);
- ``fields``: the same routes, ``POST /ingest`` tokenizing ``$.items[*].ssn``
  and ``GET /list`` detokenizing ``$.items[*].ssn`` for the records' owner
  (``otherwise: deny``, so a refused reveal shows up as a non-2xx answer rather
  than as a cheap mask), plus ``POST /list``, which tokenizes the seed list once.

Every request carries alice's bearer access token, on both gateways: the
session check and the request signing cost the same on both sides, so the
difference is the field work (parse, crypto per field, one vault round trip,
audit). The token class is opaque, the default format.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from bench import targets
from bench.gateway import Endpoint

TOKENIZE_SIZES = (1, 10, 100)
LIST_SIZE = 100
ACCESS_COOKIE = "tg-at"
KINDS = ("passthrough", "fields")

CLASSES = """\
classes:
  ssn: {format: opaque}
"""

LOGIN = """\
  - name: login
    match: {methods: [POST], path: /login}
    allow_unauthenticated: true
"""

PASSTHROUGH_ROUTES = """\
  - name: ingest
    match: {methods: [POST], path: /ingest}
    auth: {}
  - name: list
    match: {methods: [GET], path: /list}
    auth: {}
"""

FIELD_ROUTES = """\
  - name: ingest
    match: {methods: [POST], path: /ingest}
    auth: {}
    request:
      - {field: "$.items[*].ssn", action: tokenize, class: ssn}
  - name: seed
    match: {methods: [POST], path: /list}
    auth: {}
    request:
      - {field: "$.items[*].ssn", action: tokenize, class: ssn}
  - name: list
    match: {methods: [GET], path: /list}
    auth: {}
    response:
      - field: "$.items[*].ssn"
        action: detokenize
        class: ssn
        allow: {owner: true}
        otherwise: deny
"""

SESSIONS_YAML = """\
sessions:
  access_lifetime: 1h
  cookies: {{access: {cookie}, refresh: tg-rt, secure: false}}
  login: {{route: login, secret_file: "{secret}"}}
  store: {{uri: "sqlite:sessions/sessions.db"}}
tokenization:
  rate_limits: "sqlite:ratelimits/ratelimits.db"
"""


@dataclass(frozen=True, slots=True)
class VaultSection:
    """The ``vault:`` section one backend needs, and the environment its client reads."""

    url: str
    prefix: str | None = None
    accept_volatile: bool = False
    env: tuple[tuple[str, str], ...] = ()

    def yaml(self) -> str:
        lines = ["vault:", f"  url: {json.dumps(self.url)}"]
        if self.prefix is not None:
            lines.append(f"  prefix: {json.dumps(self.prefix)}")
        if self.accept_volatile:
            lines.append("  accept_volatile: true")
        return "\n".join(lines) + "\n"


def policy_yaml(kind: str) -> str:
    """The policy file of a ``passthrough`` or ``fields`` gateway."""
    if kind not in KINDS:
        raise ValueError(f"bench: unknown gateway kind {kind!r}")
    routes = PASSTHROUGH_ROUTES if kind == "passthrough" else FIELD_ROUTES
    return CLASSES + "routes:\n" + LOGIN + routes


def gateway_yaml(
    *,
    port: int,
    admin: int,
    workers: int,
    data: str,
    upstream: int,
    secret: str,
    vault: VaultSection,
) -> str:
    """gateway.yaml: the bench's listeners, access log off, sessions, vault, rate limits."""
    base = targets.GATEWAY_YAML.format(
        port=port,
        admin=admin,
        workers=workers,
        data=data,
        access_log="false",
        level="warning",
        upstream=upstream,
    )
    return base + SESSIONS_YAML.format(cookie=ACCESS_COOKIE, secret=secret) + vault.yaml()


def ssn(i: int) -> str:
    """A synthetic SSN-shaped value, distinct for each ``i`` below 10**6."""
    return f"9{i // 10**4 % 100:02d}-{i // 100 % 100:02d}-{i % 10**4:04d}"


def items_body(n: int, *, start: int = 0) -> bytes:
    """``{"items": [{"id": i, "ssn": ...}, ...]}`` with ``n`` items, compact JSON."""
    items = [{"id": i, "ssn": ssn(start + i)} for i in range(n)]
    return json.dumps({"items": items}, separators=(",", ":")).encode()


def seed_values() -> list[str]:
    """The plaintext values of the list that detokenize-100 reads back."""
    return [ssn(10**5 + i) for i in range(LIST_SIZE)]


def seed_body() -> bytes:
    return items_body(LIST_SIZE, start=10**5)


def endpoints(bearer: str, sizes: Sequence[int] = TOKENIZE_SIZES) -> list[Endpoint]:
    """tokenize-N (POST /ingest with N sensitive fields) and detokenize-100 (GET /list)."""
    auth = {"Authorization": f"Bearer {bearer}"}
    posts = [
        Endpoint(
            f"tokenize-{n}",
            "/ingest",
            {**auth, "Content-Type": "application/json"},
            method="POST",
            body=items_body(n),
        )
        for n in sizes
    ]
    return [*posts, Endpoint(f"detokenize-{LIST_SIZE}", "/list", auth)]
