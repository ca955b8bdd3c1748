"""The ``aws-kms://`` URI of the AWS KMS root, and how AWS errors become RootErrors.

The grammar is in :mod:`kms_client.aws_kms_root`. Error rules: every failure
names the operation and the cause class (unreachable, access denied, key
missing or disabled, wrong key); AWS error messages are not copied (they
may name principals), only their short error codes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from kms_client.errors import RootAuthError, RootError, RootUnavailable, WrongRoot
from tokengate.errors import ConfigError

_KEY_RE: Final = re.compile(r"^[A-Za-z0-9:/_\-]{1,2048}$")
_ARN_RE: Final = re.compile(r"^arn:aws[a-z\-]*:kms:([a-z0-9\-]+):\d{12}:(key|alias)/.+$")
_ALIAS_RE: Final = re.compile(r"^alias/[A-Za-z0-9/_\-]{1,200}$")
_CODE_RE: Final = re.compile(r"^[A-Za-z0-9.]{1,64}$")
_LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})
_PARAMS: Final = frozenset(
    {
        "region",
        "endpoint",
        "kwk-alias-prefix",
        "deletion-window-days",
        "connect-timeout",
        "read-timeout",
        "max-attempts",
    }
)
_AUTH: Final = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "IncompleteSignature",
    }
)
_UNAVAILABLE: Final = frozenset(
    {
        "ThrottlingException",
        "KMSInternalException",
        "DependencyTimeoutException",
        "KeyUnavailableException",
        "ServiceUnavailable",
        "InternalFailure",
    }
)
# AWS error code -> (error class, cause named in the message).
_CLIENT_ERRORS: Final[tuple[tuple[frozenset[str], type[RootError], str], ...]] = (
    (_AUTH, RootAuthError, "access denied"),
    (frozenset({"NotFoundException"}), WrongRoot, "key not found"),
    (
        frozenset({"DisabledException", "KMSInvalidStateException"}),
        WrongRoot,
        "key disabled or pending deletion",
    ),
    (
        frozenset({"InvalidCiphertextException", "IncorrectKeyException"}),
        WrongRoot,
        "ciphertext does not open under this key",
    ),
    (_UNAVAILABLE, RootUnavailable, "kms unavailable"),
)


@dataclass(frozen=True)
class AwsKmsRootConfig:
    """Which KMS key is the root and how to reach it; nothing secret."""

    key_id: str
    region: str
    endpoint: str | None = None
    kwk_alias_prefix: str = "alias/tokengate-kwk"
    deletion_window_days: int = 7
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    max_attempts: int = 3

    @classmethod
    def from_uri(cls, uri: str) -> AwsKmsRootConfig:
        """Parse an ``aws-kms://`` URI."""
        if not uri.startswith("aws-kms://"):
            raise ConfigError("kms: aws-kms: uri must start with 'aws-kms://'")
        key, _, query = uri[len("aws-kms://") :].partition("?")
        key = unquote(key)
        if not _KEY_RE.match(key):
            raise ConfigError("kms: aws-kms: uri needs a key id, key ARN or alias")
        params: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)):
            if name not in _PARAMS:
                raise ConfigError(f"kms: aws-kms: uri parameter {name!r} is not supported")
            if name in params:
                raise ConfigError(f"kms: aws-kms: uri parameter {name!r} given twice")
            params[name] = value
        return cls(
            key_id=key,
            region=_region(key, params.get("region")),
            endpoint=_endpoint(params.get("endpoint")),
            kwk_alias_prefix=_alias_prefix(params.get("kwk-alias-prefix", "alias/tokengate-kwk")),
            deletion_window_days=_number(params, "deletion-window-days", 7, int, 7, 30),
            connect_timeout=_number(params, "connect-timeout", 3.0, float, 0.1, 60.0),
            read_timeout=_number(params, "read-timeout", 10.0, float, 0.1, 300.0),
            max_attempts=_number(params, "max-attempts", 3, int, 1, 10),
        )


def _region(key: str, given: str | None) -> str:
    arn = _ARN_RE.match(key)
    if arn is not None:
        if given is not None and given != arn.group(1):
            raise ConfigError("kms: aws-kms: uri region differs from the key ARN's region")
        return arn.group(1)
    if key.startswith("arn:"):
        raise ConfigError("kms: aws-kms: uri key ARN is not a KMS key or alias ARN")
    if not given or not re.fullmatch(r"[a-z0-9\-]{2,32}", given):
        raise ConfigError("kms: aws-kms: uri needs region= unless the key is an ARN")
    return given


def _endpoint(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError("kms: aws-kms: uri endpoint must be an https URL")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise ConfigError("kms: aws-kms: uri endpoint must use https (http only to loopback)")
    if parts.username or parts.password:
        raise ConfigError("kms: aws-kms: uri endpoint must not carry credentials")
    return value


def _alias_prefix(value: str) -> str:
    if not _ALIAS_RE.match(value) or value.startswith("alias/aws/"):
        raise ConfigError("kms: aws-kms: uri kwk-alias-prefix must look like alias/<name>")
    return value


def _number[N: (int, float)](
    params: dict[str, str], name: str, default: N, kind: type[N], low: N, high: N
) -> N:
    if name not in params:
        return default
    try:
        value = kind(params[name])
    except ValueError:
        raise ConfigError(f"kms: aws-kms: uri {name} must be a number") from None
    if not low <= value <= high:
        raise ConfigError(f"kms: aws-kms: uri {name} must be within {low}..{high}")
    return value


def aws_error(what: str, config: AwsKmsRootConfig, e: ClientError | BotoCoreError) -> RootError:
    """The RootError for a failed boto3 call ``what``; names the cause, never a secret."""
    if isinstance(e, ClientError):
        return _client_error(what, e)
    name = type(e).__name__
    if isinstance(e, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        return RootAuthError(f"kms: aws-kms: {what}: no usable aws credentials ({name})")
    if isinstance(e, NoRegionError):
        return RootError(f"kms: aws-kms: {what}: no region configured")
    if isinstance(
        e, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError | ConnectionClosedError
    ):
        where = config.endpoint or f"region {config.region}"
        return RootUnavailable(f"kms: aws-kms: {what}: cannot reach kms at {where} ({name})")
    return RootUnavailable(f"kms: aws-kms: {what}: kms call failed ({name})")


def _client_error(what: str, e: ClientError) -> RootError:
    code = str(e.response.get("Error", {}).get("Code", ""))
    code = code if _CODE_RE.match(code) else "unknown"
    status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    for codes, cls, cause in _CLIENT_ERRORS:
        if code in codes:
            return cls(f"kms: aws-kms: {what}: {cause} ({code})")
    if status >= 500:
        return RootUnavailable(f"kms: aws-kms: {what}: kms unavailable ({code})")
    return RootError(f"kms: aws-kms: {what} failed ({code})")
