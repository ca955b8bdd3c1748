"""``s3://`` vault URIs and the boto3 client each one builds.

Form: ``s3://<bucket>?region=<region>[&endpoint=<url>][&addressing=path|virtual]
[&ca-bundle=<path>][&max-attempts=<n>]``, in the style of the ``aws-kms://``
root URI. ``endpoint`` points at an S3-compatible service (MinIO, moto);
``https`` is the norm, and ``http`` is reported by
:func:`vault.opening.insecure_reasons` unless it is loopback. Credentials come
from the environment (the boto3 default chain), never from the URI. Every
client has connect and read timeouts and a bounded number of attempts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import parse_qsl, urlsplit

import boto3
from botocore.config import Config

from vault.errors import VaultConfigError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_PARAMS: Final = frozenset({"region", "endpoint", "addressing", "ca-bundle", "max-attempts"})
_BUCKET: Final = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION: Final = re.compile(r"^[a-z0-9-]{2,32}$")


@dataclass(frozen=True)
class S3Target:
    """A parsed ``s3://`` URI; nothing secret."""

    bucket: str
    region: str
    endpoint: str | None = None
    addressing: Literal["path", "virtual"] = "virtual"
    ca_bundle: str | None = None
    max_attempts: int = 2

    @property
    def description(self) -> str:
        """Bucket and where it is reached."""
        return f"s3://{self.bucket} at {self.endpoint or self.region}"


def parse_s3_uri(uri: str) -> S3Target:
    """Parse ``uri``; VaultConfigError naming the problem."""
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise VaultConfigError("vault: url: s3:// needs a bucket")
    if parts.path not in ("", "/") or parts.fragment or "@" in parts.netloc:
        raise VaultConfigError("vault: url: s3:// names a bucket only; set vault.prefix for keys")
    if not _BUCKET.match(parts.netloc):
        raise VaultConfigError("vault: url: not a valid S3 bucket name")
    params: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in _PARAMS:
            raise VaultConfigError(f"vault: url: s3 parameter {name!r} is not supported")
        if name in params:
            raise VaultConfigError(f"vault: url: s3 parameter {name!r} given twice")
        params[name] = value
    region = params.get("region", "")
    if not _REGION.match(region):
        raise VaultConfigError("vault: url: s3:// needs region=")
    endpoint = params.get("endpoint")
    if endpoint is not None:
        ep = urlsplit(endpoint)
        if ep.scheme not in ("https", "http") or not ep.hostname or ep.username:
            raise VaultConfigError("vault: url: s3 endpoint must be an http(s) URL without user")
    addressing = params.get("addressing", "path" if endpoint else "virtual")
    if addressing not in ("path", "virtual"):
        raise VaultConfigError("vault: url: s3 addressing is path or virtual")
    attempts = params.get("max-attempts", "2")
    if not attempts.isdigit() or not 1 <= int(attempts) <= 10:
        raise VaultConfigError("vault: url: s3 max-attempts must be within 1..10")
    return S3Target(
        bucket=parts.netloc,
        region=region,
        endpoint=endpoint,
        addressing="path" if addressing == "path" else "virtual",
        ca_bundle=params.get("ca-bundle") or None,
        max_attempts=int(attempts),
    )


def is_plain_http(target: S3Target) -> bool:
    """True when the endpoint is http:// (no TLS)."""
    return target.endpoint is not None and urlsplit(target.endpoint).scheme == "http"


def endpoint_host(target: S3Target) -> str | None:
    """The endpoint's host name, if an endpoint is set."""
    return urlsplit(target.endpoint).hostname if target.endpoint else None


def make_client(target: S3Target, *, timeout: float, pool_size: int) -> S3Client:
    """A thread-safe boto3 S3 client with timeouts; credentials from the environment."""
    config = Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"total_max_attempts": target.max_attempts, "mode": "standard"},
        max_pool_connections=pool_size,
        s3={"addressing_style": target.addressing},
    )
    session = boto3.session.Session()
    return session.client(
        "s3",
        region_name=target.region,
        endpoint_url=target.endpoint,
        verify=target.ca_bundle,
        config=config,
    )
