"""The central declaration table of audit events: name -> allowed fields.

Every event any package emits is declared here, in one place, so a reviewer
sees at a glance everything the audit log can ever contain. ``emit()`` refuses
undeclared events, undeclared fields and wrongly typed values.

Rules for declarations:
- names are ``<area>.<action>`` in lowercase (``key.rotate``, ``session.create``);
- fields are ``snake_case`` and carry identifiers, digests, counts, outcomes:
  never a token, a plaintext value, a key, a secret, a password or a body;
- a field is ``required=True`` when the event means nothing without it;
- each package adds its events in ITS OWN clearly headed block below
  (``# ---- <package>: <what> ----``) and edits no other package's block;
- a name can be declared once; a duplicate stops the import.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from audit.errors import AuditSchemaError
from audit.schema import (
    EVENT_NAME,
    FIELD_NAME,
    EventSchema,
    FieldSpec,
    flag,
    integer,
    text,
    text_list,
)

__all__ = ["declare", "declared_events", "flag", "integer", "schema_for", "text", "text_list"]

_DECLARED: dict[str, EventSchema] = {}


def declare(name: str, description: str, *, internal: bool = False, **fields: FieldSpec) -> None:
    """Add one event type to the table; a bad or duplicate name stops the import."""
    if not EVENT_NAME.match(name):
        raise AuditSchemaError(f"audit: event name '{name}' is not <area>.<action> in lowercase")
    if name in _DECLARED:
        raise AuditSchemaError(f"audit: event '{name}' is declared twice")
    for key in fields:
        if not FIELD_NAME.match(key):
            raise AuditSchemaError(f"audit: event '{name}' field '{key}' is not snake_case")
    _DECLARED[name] = EventSchema(name, description, MappingProxyType(dict(fields)), internal)


def declared_events() -> Mapping[str, EventSchema]:
    """Every declared event type, read-only."""
    return MappingProxyType(_DECLARED)


def schema_for(event: str, *, internal: bool = False) -> EventSchema:
    """The schema of ``event``; unknown events (and internal ones, unless asked) are refused."""
    schema = _DECLARED.get(event)
    if schema is None or schema.internal != internal:
        shown = f"'{event}'" if EVENT_NAME.match(event) and len(event) <= 64 else "(invalid name)"
        raise AuditSchemaError(f"audit: unknown event {shown}")
    return schema


# ---- audit: the log's own entries (written by audit/, never by emit()) ----

declare(
    "audit.checkpoint",
    "signed checkpoint over the chain up to the entry before it",
    internal=True,
    covers_seq=integer(required=True, minimum=0),
    covers_hash=text(required=True, max_length=64),
    count=integer(required=True, minimum=1),
    kid=text(required=True, max_length=64),
    final=flag(required=True),
    sig=text(required=True, max_length=128),
)

# ---- proxy: gateway lifecycle ----

declare(
    "gateway.start",
    "a gateway worker started serving",
    version=text(required=True, max_length=64),
    mode=text(required=True, max_length=32),
    workers=integer(minimum=0),
    config_digest=text(max_length=128),
)
declare(
    "gateway.stop",
    "a gateway worker stopped serving",
    reason=text(max_length=256),
)

# ---- policy: configuration reloads ----

declare(
    "policy.reload",
    "a configuration/policy reload was applied or rejected",
    result=text(required=True, choices={"ok", "rejected"}),
    config_digest=text(max_length=128),
    files=integer(minimum=0),
    reason=text(max_length=512),
)

# ---- other packages: add your block below, headed like the ones above ----
# e.g. "# ---- kms_client: keys and keyring ----" then declare("key.rotate", ...)

# ---- kms_client: keys and keyring ----
# Lifecycle acts are emitted with result "requested" before they are committed
# (an audit failure refuses the act) and "ok" or "failed" once known. Fields
# carry purposes, version numbers, backend descriptions and error codes only.

_KMS_RESULT = text(required=True, choices={"requested", "ok", "failed"})
_KMS_TRIGGER = text(choices={"manual", "schedule", "usage", "startup"})

declare(
    "key.create",
    "a purpose got its first key version",
    purpose=text(required=True, max_length=64),
    version=integer(required=True, minimum=1),
    kind=text(choices={"aead", "prf", "signing"}),
    keyring_version=integer(minimum=1),
    result=_KMS_RESULT,
    reason=text(max_length=256),
    actor=text(max_length=128),
)
declare(
    "key.rotate",
    "a purpose got a new primary key version",
    purpose=text(required=True, max_length=64),
    version=integer(minimum=1),
    previous=integer(minimum=1),
    trigger=_KMS_TRIGGER,
    keyring_version=integer(minimum=1),
    result=_KMS_RESULT,
    reason=text(max_length=256),
    actor=text(max_length=128),
)
declare(
    "key.revoke",
    "a key version was revoked: it refuses to decrypt",
    purpose=text(required=True, max_length=64),
    version=integer(required=True, minimum=1),
    keyring_version=integer(minimum=1),
    result=_KMS_RESULT,
    reason=text(max_length=256),
    actor=text(max_length=128),
)
declare(
    "key.destroy",
    "a key version was destroyed (crypto-shredded) and the KWK rotated",
    purpose=text(required=True, max_length=64),
    version=integer(required=True, minimum=1),
    keyring_version=integer(minimum=1),
    kwk_version=integer(minimum=1),
    result=_KMS_RESULT,
    reason=text(max_length=256),
    actor=text(max_length=128),
)
declare(
    "keyring.kwk_rotate",
    "the keyring was re-wrapped under a new keyring-wrapping key",
    kwk_version=integer(minimum=1),
    previous=integer(minimum=1),
    keyring_version=integer(minimum=1),
    result=_KMS_RESULT,
    reason=text(max_length=256),
    actor=text(max_length=128),
)
declare(
    "keyring.kwk_destroy",
    "an old keyring-wrapping key was destroyed in the root backend",
    kwk_version=integer(required=True, minimum=1),
    result=_KMS_RESULT,
    reason=text(max_length=256),
)
declare(
    "keyring.unseal",
    "key material was loaded into memory through the root backend",
    root=text(max_length=256),
    store=text(max_length=256),
    keyring_version=integer(minimum=1),
    rng=text(max_length=64),
    result=_KMS_RESULT,
    reason=text(max_length=256),
    actor=text(max_length=128),
)
declare(
    "keyring.seal",
    "all key material was dropped from memory",
    reason=text(max_length=256),
    actor=text(max_length=128),
)
declare(
    "keyring.refresh",
    "a replica picked up a keyring version written elsewhere, or refused one",
    keyring_version=integer(required=True, minimum=1),
    previous=integer(minimum=1),
    result=text(required=True, choices={"ok", "failed"}),
    reason=text(max_length=256),
)
declare(
    "keyring.rewrap",
    "stored ciphertexts of one source were moved to the primary key versions",
    source=text(required=True, max_length=64),
    rewrapped=integer(minimum=0),
    remaining=integer(minimum=0),
    result=_KMS_RESULT,
    reason=text(max_length=256),
    actor=text(max_length=128),
)
declare(
    "kms.root_error",
    "the root backend failed (unreachable, refused, wrong root)",
    root=text(required=True, max_length=256),
    operation=text(required=True, max_length=64),
    error=text(required=True, max_length=64),
    reason=text(max_length=256),
)

# ---- proxy: sessions (login, refresh, logout) ----

declare(
    "session.create",
    "a session was created after a verified login",
    sub=text(required=True, max_length=256),
    sid_hash=text(max_length=64),
    method=text(required=True, choices={"backend_assertion", "oidc", "mfa"}),
    amr=text_list(),
)
declare(
    "session.login_failed",
    "a login assertion or OIDC callback was refused",
    method=text(required=True, choices={"backend_assertion", "oidc"}),
    reason=text(required=True, max_length=64),
    route=text(max_length=64),
)
declare(
    "session.refresh",
    "a refresh token was rotated (or reused within the grace window)",
    sub=text(required=True, max_length=256),
    sid_hash=text(required=True, max_length=64),
    outcome=text(required=True, choices={"rotated", "grace"}),
)
declare(
    "session.refresh_reuse",
    "a rotated refresh token came back: its whole family was revoked",
    sub=text(required=True, max_length=256),
    sid_hash=text(required=True, max_length=64),
    family_revoked=flag(required=True),
)
declare(
    "session.revoke",
    "a session ended (logout by its user)",
    sub=text(required=True, max_length=256),
    sid_hash=text(required=True, max_length=64),
    actor=text(required=True, max_length=128),
)

# ---- proxy.adminapi: session administration (admin API and `tokengate sessions`) ----
# Revokes are emitted with result "requested" before they take effect (an audit
# failure refuses the act) and "ok" or "failed" once known. ``actor`` is
# ``apikey:<key name>`` (admin API) or ``cli:<login>``; sessions are named by
# ``sid_hash`` (hex SHA-256 of the session id), never by a token.

_ADMIN_RESULT = text(required=True, choices={"requested", "ok", "failed"})
_ADMIN_ROLE = text(choices={"admin", "operator", "auditor"})

declare(
    "admin.session_revoke",
    "one session was revoked by an administrator",
    actor=text(required=True, max_length=128),
    role=_ADMIN_ROLE,
    sid_hash=text(required=True, max_length=64),
    sub=text(max_length=1024),
    revoked=flag(),
    result=_ADMIN_RESULT,
    reason=text(max_length=256),
    error=text(max_length=64),
    request_id=text(max_length=64),
)
declare(
    "admin.user_revoke",
    "every session of one user was revoked by an administrator",
    actor=text(required=True, max_length=128),
    role=_ADMIN_ROLE,
    sub=text(required=True, max_length=1024),
    count=integer(minimum=0),
    result=_ADMIN_RESULT,
    reason=text(max_length=256),
    error=text(max_length=64),
    request_id=text(max_length=64),
)
declare(
    "admin.all_revoke",
    "every session of every user was revoked by an administrator",
    actor=text(required=True, max_length=128),
    role=_ADMIN_ROLE,
    result=_ADMIN_RESULT,
    reason=text(max_length=256),
    error=text(max_length=64),
    request_id=text(max_length=64),
)
declare(
    "admin.sessions_list",
    "an administrator was shown the sessions of one user",
    actor=text(required=True, max_length=128),
    role=_ADMIN_ROLE,
    sub=text(required=True, max_length=1024),
    count=integer(required=True, minimum=0),
    request_id=text(max_length=64),
)
declare(
    "admin.auth_failed",
    "an admin API request was refused: no, malformed or unknown key, or too weak a role",
    reason=text(
        required=True, choices={"missing", "malformed", "unknown_key", "insufficient_role"}
    ),
    key_name=text(max_length=64),
    role=_ADMIN_ROLE,
    required_role=_ADMIN_ROLE,
    operation=text(max_length=64),
    peer=text(max_length=64),
    request_id=text(max_length=64),
)

# ---- proxy: mfa ----
# Second factors over HTTP (``/.tokengate/mfa/...``). ``method`` is ``otp``
# (TOTP), ``hwk`` (WebAuthn key) or ``recovery``; ``reason`` is a fixed word
# from the MFA service. Never a code, a secret, an otpauth URI or a credential.

_MFA_METHOD = text(required=True, choices={"otp", "hwk", "recovery"})

declare(
    "mfa.enrol",
    "a second factor enrolment was started, completed or refused",
    sub=text(required=True, max_length=256),
    method=_MFA_METHOD,
    outcome=text(required=True, choices={"begun", "enrolled", "failed", "replayed"}),
    reason=text(max_length=64),
    recovery_codes=integer(minimum=0),
)
declare(
    "mfa.pass",
    "a second factor was verified: the session was stepped up under a new session id",
    sub=text(required=True, max_length=256),
    method=_MFA_METHOD,
    sid_hash=text(max_length=64),
    acr=text(max_length=64),
    amr=text_list(),
    recovery_codes_left=integer(minimum=0),
)
declare(
    "mfa.fail",
    "a second factor was refused (wrong code, replay, invalid WebAuthn response)",
    sub=text(required=True, max_length=256),
    method=_MFA_METHOD,
    outcome=text(required=True, choices={"failed", "replayed"}),
    reason=text(required=True, max_length=64),
    failures=integer(minimum=0),
)
declare(
    "mfa.lockout",
    "a code was refused because the subject's MFA is locked (or this failure locked it)",
    sub=text(required=True, max_length=256),
    method=_MFA_METHOD,
    reason=text(required=True, max_length=64),
    retry_after=integer(minimum=0),
    failures=integer(minimum=0),
)
declare(
    "mfa.step_up_demanded",
    "a request needed a stronger or fresher authentication than its session had",
    sub=text(required=True, max_length=256),
    reason=text(required=True, max_length=64),
    route=text(max_length=64),
    acr=text(max_length=64),
)

# ---- plugins: field actions ----
# Detokenize decisions are audited per message, rule and (decision, reason):
# one entry lists the audit_id() hashes of every record it covers (never a
# token or a value), so a 100-token response costs a couple of entries.
# ``subject`` is the session's sub or "anonymous". ``reason`` is a fixed word:
# the allow conditions that held ("owner", "roles+mfa+max_age") or why not
# ("not_owner|mfa_required", "rate_limited", "unknown", "malformed",
# "refused", "not_text", "wrong_class"). Tokenize is not audited per message:
# making a token reveals nothing.

declare(
    "token.detokenize",
    "values of one rule and message were revealed (allow) or withheld (deny)",
    route=text(required=True, max_length=128),
    rule=text(required=True, max_length=64),
    field_class=text(required=True, max_length=64),
    subject=text(required=True, max_length=1024),
    decision=text(required=True, choices={"allow", "deny"}),
    reason=text(required=True, max_length=128),
    otherwise=text(choices={"mask", "redact", "keep-token", "deny"}),
    count=integer(required=True, minimum=1),
    record_ids=text_list(required=True, max_items=500, max_length=32),
    request_id=text(max_length=64),
)
declare(
    "token.rate_limited",
    "alert: a subject hit its detokenize rate limit for a class; the values were withheld",
    route=text(required=True, max_length=128),
    rule=text(required=True, max_length=64),
    field_class=text(required=True, max_length=64),
    subject=text(required=True, max_length=1024),
    count=integer(required=True, minimum=1),
    limit=integer(required=True, minimum=1),
    window=integer(required=True, minimum=0),
    request_id=text(max_length=64),
)

# ---- proxy.egress: the egress relay (`tokengate egress serve`) ----
# ``egress.detokenize`` is the detokenize action's entry (fields as
# ``token.detokenize``) for a release to a third party: ``host``/``port`` name
# the destination; written BEFORE the value leaves. ``egress.refused`` is a
# route's cap (``release_cap``) or a client's rate limit (``rate_limited``)
# refusing a call before the vault is asked. ``egress.undelivered`` follows
# the releases of a call that then failed on the way (audited before sending,
# so an "allow" alone does not prove the value left). ``subject`` is
# ``egress:<client>``.
# ``egress.ca_create`` records the relay's CA being made (its SHA-256
# fingerprint; the key is stored wrapped under the keyring, never logged).

declare(
    "egress.detokenize",
    "values of one rule were released to a third party (allow) or withheld (deny)",
    host=text(required=True, max_length=253),
    port=integer(required=True, minimum=1),
    route=text(required=True, max_length=128),
    rule=text(required=True, max_length=64),
    field_class=text(required=True, max_length=64),
    subject=text(required=True, max_length=1024),
    decision=text(required=True, choices={"allow", "deny"}),
    reason=text(required=True, max_length=128),
    otherwise=text(choices={"mask", "redact", "keep-token", "deny"}),
    count=integer(required=True, minimum=1),
    record_ids=text_list(required=True, max_items=500, max_length=32),
    request_id=text(max_length=64),
)
declare(
    "egress.refused",
    "a call to a third party was refused before anything was released",
    host=text(required=True, max_length=253),
    port=integer(required=True, minimum=1),
    route=text(required=True, max_length=128),
    rule=text(required=True, max_length=64),
    field_class=text(required=True, max_length=64),
    subject=text(required=True, max_length=1024),
    reason=text(required=True, choices={"release_cap", "rate_limited"}),
    count=integer(required=True, minimum=1),
    request_id=text(max_length=64),
)
declare(
    "egress.undelivered",
    "a call failed on the way after values were released for it: the third party may or"
    " may not have received them (the egress.detokenize entries of its request_id)",
    host=text(required=True, max_length=253),
    port=integer(required=True, minimum=1),
    route=text(required=True, max_length=128),
    subject=text(required=True, max_length=1024),
    released=integer(required=True, minimum=1),
    error=text(required=True, choices={"connect", "tls", "timeout", "closed", "other"}),
    request_id=text(required=True, max_length=64),
)
declare(
    "egress.ca_create",
    "the egress relay's CA was made and stored wrapped under the keyring",
    fingerprint=text(required=True, max_length=64),
    common_name=text(required=True, max_length=64),
    actor=text(required=True, max_length=128),
)
declare(
    "egress.start",
    "an egress relay started serving",
    version=text(required=True, max_length=64),
    routes=integer(required=True, minimum=0),
    clients=integer(required=True, minimum=0),
    unlisted_hosts=text(required=True, choices={"refuse", "tunnel"}),
    ca_fingerprint=text(required=True, max_length=64),
)
declare(
    "egress.stop",
    "an egress relay stopped serving",
    reason=text(max_length=256),
)
declare(
    "egress.reload",
    "an egress relay reload (SIGHUP) was applied or rejected",
    result=text(required=True, choices={"ok", "rejected"}),
    trigger=text(required=True, max_length=64),
    routes=integer(minimum=0),
    clients=integer(minimum=0),
)

# ---- proxy.adminapi: tokens (admin API and `tokengate token`) ----
# Each act is emitted with result "requested" before the vault is touched (an
# audit failure refuses it) and "ok" or "failed" once known. Detokenize hands
# values out only once its "ok" entry, naming the records, is written. Records
# are named by vault.api.audit_id() hashes (``record_ids``, in request order,
# only for tokens that parsed); values and tokens never appear.

declare(
    "admin.token_tokenize",
    "an administrator tokenized values of one field class",
    actor=text(required=True, max_length=128),
    role=text(choices={"admin", "operator", "auditor"}),
    request_id=text(max_length=64),
    field_class=text(required=True, max_length=64),
    count=integer(required=True, minimum=0),
    result=text(required=True, choices={"requested", "ok", "failed"}),
    error=text(max_length=64),
    tokenized=integer(minimum=0),
    mismatched=integer(minimum=0),
    owner=text(max_length=1024),
    tenant=text(max_length=256),
)
declare(
    "admin.token_detokenize",
    "an administrator was shown the values behind tokens of one field class",
    actor=text(required=True, max_length=128),
    role=text(choices={"admin", "operator", "auditor"}),
    request_id=text(max_length=64),
    field_class=text(required=True, max_length=64),
    count=integer(required=True, minimum=0),
    result=text(required=True, choices={"requested", "ok", "failed"}),
    error=text(max_length=64),
    revealed=integer(minimum=0),
    refused=integer(minimum=0),
    record_ids=text_list(max_items=500, max_length=32),
)
declare(
    "admin.token_delete",
    "an administrator erased the records behind tokens of one field class",
    actor=text(required=True, max_length=128),
    role=text(choices={"admin", "operator", "auditor"}),
    request_id=text(max_length=64),
    field_class=text(required=True, max_length=64),
    count=integer(required=True, minimum=0),
    result=text(required=True, choices={"requested", "ok", "failed"}),
    error=text(max_length=64),
    deleted=integer(minimum=0),
    record_ids=text_list(max_items=500, max_length=32),
)

# ---- proxy.migrate: tokenizing existing columns (`tokengate migrate`) ----
# ``start`` before anything is read; one ``batch`` per batch that changes rows,
# written after its vault records are committed and BEFORE the rows are
# updated (an audit failure stops the run with those rows untouched); ``finish``
# with the totals. Tables and columns are named; rows, values, tokens, the DSN
# and the --where text are not (``filtered`` says whether one was given).

declare(
    "migrate.start",
    "a migration of plaintext in an existing column to tokens started",
    actor=text(required=True, max_length=128),
    database=text(required=True, choices={"sqlite", "postgresql"}),
    table=text(required=True, max_length=128),
    column=text(required=True, max_length=64),
    field_class=text(required=True, max_length=64),
    dry_run=flag(),
    filtered=flag(),
    batch_size=integer(minimum=1),
    owner_column=text(max_length=64),
    tenant=text(max_length=256),
)
declare(
    "migrate.batch",
    "a batch of rows is about to be rewritten with tokens whose records are committed",
    actor=text(required=True, max_length=128),
    database=text(required=True, choices={"sqlite", "postgresql"}),
    table=text(required=True, max_length=128),
    column=text(required=True, max_length=64),
    field_class=text(required=True, max_length=64),
    dry_run=flag(),
    scanned=integer(minimum=0),
    tokenized=integer(minimum=0),
    already_tokens=integer(minimum=0),
    empty=integer(minimum=0),
    not_text=integer(minimum=0),
    mismatched=integer(minimum=0),
    conflicts=integer(minimum=0),
)
declare(
    "migrate.finish",
    "a migration of an existing column ended",
    actor=text(required=True, max_length=128),
    database=text(required=True, choices={"sqlite", "postgresql"}),
    table=text(required=True, max_length=128),
    column=text(required=True, max_length=64),
    field_class=text(required=True, max_length=64),
    dry_run=flag(),
    scanned=integer(minimum=0),
    tokenized=integer(minimum=0),
    already_tokens=integer(minimum=0),
    empty=integer(minimum=0),
    not_text=integer(minimum=0),
    mismatched=integer(minimum=0),
    conflicts=integer(minimum=0),
    result=text(required=True, choices={"ok", "failed"}),
    error=text(max_length=64),
)

# ---- proxy: attestation API ----
# One entry per verification an administrator asks of the gateway
# (``POST /.tokengate/admin/v1/attestation/verify``), written once the verdict
# is known and BEFORE it is answered: a verdict that cannot be recorded is not
# given (503). Evidence is named by its SHA-256 and size, never carried;
# measurements are ``name=hex``; ``check`` is the failed check of a refusal.

declare(
    "attest.verify",
    "TEE attestation evidence was verified on an administrator's request",
    actor=text(required=True, max_length=128),
    role=text(choices={"admin", "operator", "auditor"}),
    request_id=text(max_length=64),
    platform=text(required=True, choices={"nitro", "sev-snp", "tdx", "sgx", "sim"}),
    verdict=text(required=True, choices={"verified", "refused"}),
    check=text(max_length=64),
    evidence_sha256=text(required=True, max_length=64),
    evidence_bytes=integer(required=True, minimum=0),
    verified_at=text(required=True, max_length=40),
    tcb_status=text(max_length=64),
    debug=flag(),
    measurements=text_list(max_items=64, max_length=160),
)

# ---- kms: remote root ----
# The KMS's root operations for gateways (`remote:` root backend). ``client``
# is the calling credential's id; ``kwk_id`` names the KWK row (it is not
# secret: the reference carries it). Never the KWK, its reference or a share.

declare(
    "kms.root_create",
    "the KMS made a KWK for a gateway (remote: root), or refused to",
    client=text(required=True, max_length=128),
    version=integer(required=True, minimum=1),
    kwk_id=text(max_length=32),
    result=text(required=True, choices={"ok", "refused"}),
    reason=text(choices={"exists"}),
)
declare(
    "kms.root_open",
    "the KMS opened a gateway's KWK (remote: root), or refused to",
    client=text(required=True, max_length=128),
    version=integer(required=True, minimum=1),
    kwk_id=text(max_length=32),
    result=text(required=True, choices={"ok", "refused"}),
    reason=text(choices={"unknown", "destroyed"}),
)
declare(
    "kms.root_destroy",
    "a gateway's KWK was destroyed in the KMS (remote: root); it never opens again",
    client=text(required=True, max_length=128),
    version=integer(required=True, minimum=1),
    kwk_id=text(max_length=32),
    result=text(required=True, choices={"requested", "ok", "already", "unknown"}),
)

# ---- tee: pool ----
# The gateway's TEE pool (``tee.pool``). ``worker`` is the configured
# ``tee_id@address``; ``check`` names the failed check (an attestation check
# such as ``measurement`` or ``nonce``, or ``retired``, ``registry``,
# ``refused`` (the worker or the KMS said no, e.g. the KMS would not attest
# it), ``unavailable``, ``timeout``, ``unreachable``, ``audit``); ``detail``
# is the fixed reason text of that check or the refusal's error code. Never
# evidence, keys, nonces or job values.

declare(
    "tee.attest",
    "the gateway checked a pool worker's attestation: admitted into rotation or refused",
    tee_id=text(required=True, max_length=128),
    worker=text(required=True, max_length=320),
    platform=text(choices={"nitro", "sev-snp", "tdx", "sgx", "sim"}),
    result=text(required=True, choices={"admitted", "refused"}),
    check=text(max_length=64),
    detail=text(max_length=256),
    generation=integer(minimum=0),
)
declare(
    "tee.evict",
    "a worker left the gateway's TEE pool; the KMS was asked to revoke its keys' grants",
    tee_id=text(required=True, max_length=128),
    worker=text(required=True, max_length=320),
    check=text(required=True, max_length=64),
    detail=text(max_length=256),
    revoked=flag(required=True),
)

# ---- kms: broker and registry ----
# The KMS service (``tokengate kms serve``): TEE registry changes, attestation
# of workers, one-time key grants and releases, revocations, and every refusal.
# ``actor`` is the calling credential's id (workers have none: they prove
# themselves with evidence). ``key_id`` is the first 16 hex digits of the
# SHA-256 of a worker's public key, for correlation; keys, K2, sessions,
# nonces and evidence never appear. ``check`` names the failed attestation
# check (``nonce``, ``measurement``, ``tcb``, ``debug``, ``signature``, ...);
# ``code`` is the refusal's error code as answered.

_KMS_OP = text(
    required=True,
    choices={
        "challenge",
        "attest",
        "grant",
        "release",
        "revoke",
        "register",
        "retire",
        "read",
        "root",  # the remote-root routes' authentication and role check
    },
)

declare(
    "kms.tee_register",
    "a TEE was added to the KMS registry",
    actor=text(required=True, max_length=128),
    tee_id=text(required=True, max_length=64),
    platform=text(required=True, max_length=16),
    measurements=text_list(required=True, max_items=64, max_length=32),
    tenants=text_list(required=True, max_items=64, max_length=128),
    jobs=text_list(max_items=64, max_length=128),
    allow_debug=flag(required=True),
    accepted_tcb=text_list(required=True, max_items=64, max_length=128),
)
declare(
    "kms.tee_retire",
    "a TEE was retired in the KMS registry (final); its sessions and grants were revoked",
    actor=text(required=True, max_length=128),
    tee_id=text(required=True, max_length=64),
    platform=text(max_length=16),
    result=text(required=True, choices={"requested", "ok"}),
    revoked_sessions=integer(minimum=0),
    revoked_grants=integer(minimum=0),
)
declare(
    "kms.attest",
    "a worker's evidence was checked by the KMS (ok opens an attestation session)",
    tee_id=text(required=True, max_length=64),
    platform=text(max_length=16),
    key_id=text(max_length=16),
    outcome=text(required=True, choices={"ok", "refused"}),
    check=text(max_length=64),
    expires_at=integer(minimum=0),
)
declare(
    "kms.grant",
    "a one-time key was made for a job and handed to a gateway",
    actor=text(required=True, max_length=128),
    tee_id=text(required=True, max_length=64),
    key_id=text(required=True, max_length=16),
    grant_id=text(required=True, max_length=64),
    job=text(required=True, max_length=128),
    tenant=text(required=True, max_length=128),
    request_id=text(required=True, max_length=128),
    expires_at=integer(required=True, minimum=0),
)
declare(
    "kms.release",
    "a one-time key was released (once) to the attested worker it is bound to",
    tee_id=text(required=True, max_length=64),
    key_id=text(required=True, max_length=16),
    grant_id=text(required=True, max_length=64),
    job=text(required=True, max_length=128),
    tenant=text(required=True, max_length=128),
    request_id=text(required=True, max_length=128),
)
declare(
    "kms.refuse",
    "the KMS refused a call (authentication, registry, attestation session, grant rules)",
    op=_KMS_OP,
    code=text(required=True, max_length=64),
    actor=text(max_length=128),
    tee_id=text(max_length=64),
    key_id=text(max_length=16),
    grant_id=text(max_length=64),
    job=text(max_length=128),
    tenant=text(max_length=128),
    request_id=text(max_length=128),
)
declare(
    "kms.revoke",
    "attestation sessions and unreleased grants of a TEE (or one worker key) were revoked",
    actor=text(required=True, max_length=128),
    tee_id=text(required=True, max_length=64),
    key_id=text(max_length=16),
    reason=text(required=True, choices={"api", "retire"}),
    revoked_sessions=integer(required=True, minimum=0),
    revoked_grants=integer(required=True, minimum=0),
)
declare(
    "kms.throttled",
    "calls of one peer to the unauthenticated broker routes were refused 429 (one entry per"
    " peer per interval, with the count)",
    peer=text(required=True, max_length=64),
    count=integer(required=True, minimum=1),
)
