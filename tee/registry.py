"""The TEE registry: which TEEs exist, on which platform, with which legitimate measurements.

Rules:
- An entry names its ``platform``; the verifier is chosen from it, never from
  the evidence (:func:`tee.verifiers.verifier_for`).
- ``measurements`` maps a measurement name (``pcr0``, ``measurement``,
  ``mrtd``, ...) to the accepted lowercase hex values; every name listed must
  be present in verified claims and match one value. An entry lists at least
  one name with at least one value: an empty list would accept any code.
- ``tenants`` lists the tenants whose data the TEE may see (at least one);
  ``jobs`` lists the jobs it may run (``None``: any job it offers).
- ``status`` is ``active`` or ``retired``; retiring is final and an id is
  never registered twice (old audit entries keep their meaning).

Stores (:class:`TeeRegistry`) are chosen by URI: ``sqlite:PATH`` or
``postgresql://`` (:func:`open_registry`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal, Protocol

from tee.attestation import Platform, Policy
from tee.errors import RegistryError

ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")
HEX_RE: Final = re.compile(r"(?:[0-9a-f]{2}){1,128}")
LABEL_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,127}")
MAX_ITEMS: Final = 64

type Status = Literal["active", "retired"]


@dataclass(frozen=True, slots=True)
class TeeEntry:
    """One registered TEE (validated on construction: a bad entry cannot exist)."""

    id: str
    platform: Platform
    measurements: Mapping[str, tuple[str, ...]]
    tenants: tuple[str, ...]
    jobs: tuple[str, ...] | None = None
    allow_debug: bool = False
    accepted_tcb: tuple[str, ...] = ("UpToDate",)
    status: Status = "active"
    created_at: int = 0
    retired_at: int | None = None
    _frozen: Mapping[str, frozenset[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_id(self.id)
        _check_measurements(self.measurements)
        _check_labels("tenants", self.tenants, minimum=1)
        if self.jobs is not None:
            _check_labels("jobs", self.jobs, minimum=1)
        _check_labels("accepted_tcb", self.accepted_tcb, minimum=1)
        if self.status not in ("active", "retired"):
            raise RegistryError("registry: status is active or retired")
        if (self.status == "retired") != (self.retired_at is not None):
            raise RegistryError("registry: retired_at is set exactly when retired")
        frozen = {k: frozenset(v) for k, v in self.measurements.items()}
        object.__setattr__(self, "measurements", MappingProxyType(dict(self.measurements)))
        object.__setattr__(self, "_frozen", MappingProxyType(frozen))

    @property
    def active(self) -> bool:
        """True until the entry is retired."""
        return self.status == "active"

    def policy(self) -> Policy:
        """The verifier policy this entry demands (debug, TCB, measurements)."""
        return Policy(
            allow_debug=self.allow_debug,
            accepted_tcb=frozenset(self.accepted_tcb),
            measurements=self._frozen,
        )

    def allows_tenant(self, tenant: str) -> bool:
        """Whether data of ``tenant`` may go to this TEE."""
        return tenant in self.tenants

    def allows_job(self, job: str) -> bool:
        """Whether this TEE may run ``job``."""
        return self.jobs is None or job in self.jobs

    def retired(self, at: datetime) -> TeeEntry:
        """This entry retired at ``at`` (unchanged when already retired)."""
        if not self.active:
            return self
        return replace(self, status="retired", retired_at=int(at.timestamp()))

    def to_json(self) -> dict[str, object]:
        """The entry as the KMS API answers it (docs/tee-protocol.md)."""
        return {
            "id": self.id,
            "platform": self.platform.value,
            "measurements": {k: list(v) for k, v in sorted(self.measurements.items())},
            "tenants": list(self.tenants),
            "jobs": list(self.jobs) if self.jobs is not None else None,
            "allow_debug": self.allow_debug,
            "accepted_tcb": list(self.accepted_tcb),
            "status": self.status,
            "created_at": self.created_at,
            "retired_at": self.retired_at,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, object]) -> TeeEntry:
        """An entry from its JSON form (as stored, or as answered); RegistryError if malformed."""
        try:
            return cls(
                id=_str(doc, "id"),
                platform=_platform(doc.get("platform")),
                measurements=_measurements(doc.get("measurements")),
                tenants=_strs(doc, "tenants"),
                jobs=None if doc.get("jobs") is None else _strs(doc, "jobs"),
                allow_debug=_bool(doc.get("allow_debug", False), "allow_debug"),
                accepted_tcb=_strs(doc, "accepted_tcb", default=("UpToDate",)),
                status=_status(doc.get("status", "active")),
                created_at=_int(doc.get("created_at", 0), "created_at"),
                retired_at=_opt_int(doc.get("retired_at"), "retired_at"),
            )
        except (TypeError, ValueError) as e:
            raise RegistryError("registry: malformed entry") from e


def new_entry(doc: Mapping[str, object], *, now: datetime) -> TeeEntry:
    """A fresh active entry from a registration body (status and times are the registry's)."""
    allowed = {"id", "platform", "measurements", "tenants", "jobs", "allow_debug", "accepted_tcb"}
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise RegistryError(f"registry: unknown field '{unknown[0][:32]}'")
    body = {**doc, "status": "active", "created_at": int(now.timestamp()), "retired_at": None}
    return TeeEntry.from_json(body)


class TeeRegistry(Protocol):
    """Where entries live; every call is one transaction."""

    async def open(self) -> None:
        """Connect and create the tables; idempotent."""
        ...

    async def close(self) -> None:
        """Release connections; idempotent."""
        ...

    async def register(self, entry: TeeEntry) -> TeeEntry:
        """Store a new entry; RegistryError 409 ``tee_exists`` if the id was ever used."""
        ...

    async def get(self, tee_id: str) -> TeeEntry | None:
        """The entry (active or retired), None if unknown."""
        ...

    async def entries(self) -> list[TeeEntry]:
        """Every entry, by id."""
        ...

    async def retire(self, tee_id: str, *, now: datetime) -> TeeEntry:
        """Retire the entry (no-op when retired); RegistryError 404 ``unknown_tee``."""
        ...


def unknown_tee() -> RegistryError:
    """The refusal for an id the registry does not hold."""
    return RegistryError("registry: unknown TEE", status=404, code="unknown_tee")


def tee_exists() -> RegistryError:
    """The refusal for an id that was registered before (even if retired)."""
    return RegistryError(
        "registry: this TEE id is already registered", status=409, code="tee_exists"
    )


def open_registry(
    uri: str, *, data_dir: Path, schema: str = "tokengate_kms", timeout: float = 5.0
) -> TeeRegistry:
    """The registry store ``uri`` names (not yet opened); ``timeout`` bounds each call."""
    from tee.db import is_postgres, sqlite_file

    if is_postgres(uri):
        from tee.registry_pg import PostgresTeeRegistry

        return PostgresTeeRegistry(uri, schema=schema, timeout=timeout)
    if uri.startswith("sqlite:"):
        from tee.registry_sqlite import SqliteTeeRegistry

        return SqliteTeeRegistry(sqlite_file(uri, data_dir), timeout=timeout)
    raise RegistryError("registry: store must be sqlite:PATH or postgresql://")


def now_utc() -> datetime:
    """The wall clock (callers inject their own in tests)."""
    return datetime.now(UTC)


# ---- validation helpers (no IO) ----


def _check_id(tee_id: object) -> None:
    if not isinstance(tee_id, str) or not ID_RE.fullmatch(tee_id):
        raise RegistryError("registry: id must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _check_measurements(measurements: Mapping[str, Sequence[str]]) -> None:
    if not measurements or len(measurements) > MAX_ITEMS:
        raise RegistryError("registry: measurements must name 1 to 64 measurements")
    for name, values in measurements.items():
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise RegistryError("registry: a measurement name must match [a-z0-9][a-z0-9_.-]*")
        if isinstance(values, str) or not values or len(values) > MAX_ITEMS:
            raise RegistryError(f"registry: measurements.{name} must list 1 to 64 hex values")
        for value in values:
            if not isinstance(value, str) or not HEX_RE.fullmatch(value):
                raise RegistryError(f"registry: measurements.{name}: values are lowercase hex")


def _check_labels(where: str, values: Sequence[str], *, minimum: int) -> None:
    if isinstance(values, str) or not minimum <= len(values) <= MAX_ITEMS:
        raise RegistryError(f"registry: {where} must list {minimum} to {MAX_ITEMS} names")
    for value in values:
        if not isinstance(value, str) or not LABEL_RE.fullmatch(value):
            raise RegistryError(
                f"registry: {where}: a name has characters outside [A-Za-z0-9_.:@/-]"
            )
    if len(set(values)) != len(values):
        raise RegistryError(f"registry: {where}: a name is listed twice")


def _str(doc: Mapping[str, object], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str):
        raise RegistryError(f"registry: {key} must be a string")
    return value


def _strs(
    doc: Mapping[str, object], key: str, *, default: tuple[str, ...] | None = None
) -> tuple[str, ...]:
    value = doc.get(key)
    if value is None and default is not None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RegistryError(f"registry: {key} must be a list of strings")
    return tuple(value)


def _platform(value: object) -> Platform:
    try:
        return Platform(str(value))
    except ValueError as e:
        raise RegistryError("registry: platform must be nitro, sev-snp, tdx, sgx or sim") from e


def _measurements(value: object) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise RegistryError("registry: measurements must be an object {name: [hex, ...]}")
    out: dict[str, tuple[str, ...]] = {}
    for name, values in value.items():
        if not isinstance(values, list):
            raise RegistryError("registry: measurements must be an object {name: [hex, ...]}")
        if not all(isinstance(v, str) for v in values):
            raise RegistryError(
                f"registry: measurements.{str(name)[:32]}: values are lowercase hex"
            )
        out[str(name)] = tuple(v.lower() for v in values)
    return out


def _bool(value: object, key: str) -> bool:
    if not isinstance(value, bool):
        raise RegistryError(f"registry: {key} must be true or false")
    return value


def _int(value: object, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise RegistryError(f"registry: {key} must be an integer")
    return value


def _opt_int(value: object, key: str) -> int | None:
    return None if value is None else _int(value, key)


def _status(value: object) -> Status:
    if value == "active":
        return "active"
    if value == "retired":
        return "retired"
    raise RegistryError("registry: status is active or retired")
