"""The ``vault:`` section of gateway.yaml: where vault records live.

``url`` picks the backend by scheme (see :func:`vault.opening.open_store`):
``sqlite:<path>`` (the embedded default; a relative path lives under the data
dir, ``sqlite:///abs/file.db`` or ``sqlite:/abs/file.db`` is absolute, as for
``sessions.uri``), ``redis[s]://`` (one server), ``redis[s]+sentinel://``
(the master of a Sentinel service), ``redis[s]+cluster://`` (a Redis Cluster,
every vault key in one hash slot), ``postgresql://`` / ``postgres://`` and
``s3://bucket``. A store that would not survive its own
restart is refused at start-up unless ``accept_volatile`` says otherwise.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_URL = "sqlite:vault/vault.db"


class VaultConfig(BaseModel):
    """The vault store and its limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        DEFAULT_URL,
        description="store: sqlite:<path> (relative to the data dir), redis[s]://, "
        "redis[s]+sentinel://h1,h2/<service>[/<db>], redis[s]+cluster://n1,n2, "
        "postgresql://, s3://bucket?region=...&endpoint=...",
    )
    accept_volatile: bool = Field(
        False,
        description="accept a store that may lose committed records on restart "
        "(e.g. Redis without appendonly yes + appendfsync always)",
    )
    timeout: float = Field(
        5.0, gt=0, le=300, description="seconds one store round trip may take before failing closed"
    )
    max_concurrency: int = Field(
        16,
        ge=1,
        le=512,
        description="concurrent requests per message on stores that cannot batch (S3)",
    )
    replica_wait_timeout: float = Field(
        1.0,
        gt=0,
        le=60,
        description="seconds a Redis write waits for one replica to acknowledge (WAIT); "
        "none acknowledging fails the write closed",
    )
    prefix: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_:./-]{0,128}$",
        description="key prefix for Redis keys and S3 object names; default tokengate:vault: "
        "(Redis), tokengate/vault/ (S3)",
    )
