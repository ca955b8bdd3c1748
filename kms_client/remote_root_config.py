"""The ``remote:`` URI of the tokengate KMS root, and the credential it names.

Grammar (parts separated by ``;``; the first part is the KMS's base URL)::

    remote:<https URL of the KMS>
        ;credential-env=VAR | ;credential-file=PATH   exactly one (required)
        [;ca=PATH]                 PEM bundle that signs the KMS's certificate
                                   (default: the system trust store)
        [;cert=PATH;key=PATH]      client certificate and key for mTLS (both or neither)
        [;timeout=SECONDS]         per call, 0 < s <= 300; default 10
        [;connect-timeout=SECONDS] 0 < s <= 300; default 5

e.g. ``remote:https://kms.internal:8443;ca=/etc/tokengate/kms-ca.pem;credential-env=TG_KMS_CREDENTIAL``.

The URL is ``https://host[:port][/prefix]`` (``http://`` only outside
production: a start-up error under ``mode: production``), without user
info, query or fragment. Relative paths are made absolute at parse time.
The credential (``tgk_...``, issued by the KMS with the ``gateway`` role) is
read when the root opens, from the variable or from a file that group and
others cannot read; it never appears in the URI, a description, a log line
or an error.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from kms_client.errors import RootError, RootUnavailable
from tokengate.errors import ConfigError

_PARAMS: Final = frozenset(
    {"credential-env", "credential-file", "ca", "cert", "key", "timeout", "connect-timeout"}
)
_ENV_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_CREDENTIAL_RE: Final = re.compile(r"[\x21-\x7e]{1,4096}")  # visible ASCII: no header injection
_MAX_TIMEOUT: Final = 300.0


@dataclass(frozen=True)
class RemoteRootConfig:
    """A parsed ``remote:`` URI: where the KMS is, how to trust it, where the credential is."""

    url: str
    credential_env: str | None = None
    credential_file: Path | None = None
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    timeout: float = 10.0
    connect_timeout: float = 5.0

    @property
    def plaintext(self) -> bool:
        """True for ``http://``: refused in production."""
        return self.url.startswith("http://")

    @property
    def description(self) -> str:
        """``remote:<URL>``: safe to log (the URI carries no secret)."""
        return f"remote:{self.url}"

    @classmethod
    def from_uri(cls, uri: str) -> RemoteRootConfig:
        """Parse a ``remote:`` URI (grammar in the module docstring); ConfigError if it is bad."""
        body = uri.removeprefix("remote:").strip()
        url, *parts = body.split(";")
        params: dict[str, str] = {}
        for part in filter(None, (p.strip() for p in parts)):
            name, eq, value = part.partition("=")
            name, value = name.strip(), value.strip()
            if name not in _PARAMS:
                raise ConfigError(f"keys.root: remote: URI has an unknown part '{name}'")
            if name in params:
                raise ConfigError(f"keys.root: '{name}' given twice in remote: URI")
            if not eq or not value:
                raise ConfigError(f"keys.root: remote: URI part '{name}' needs '=value'")
            params[name] = value
        base = _base_url(url.strip())
        env, file = _credential(params)
        ca, cert, key = _tls(params, https=base.startswith("https://"))
        return cls(
            url=base,
            credential_env=env,
            credential_file=file,
            ca=ca,
            cert=cert,
            key=key,
            timeout=_seconds(params, "timeout", 10.0),
            connect_timeout=_seconds(params, "connect-timeout", 5.0),
        )

    def read_credential(self, environ: Mapping[str, str] | None = None) -> str:
        """The credential from its variable or file; RootError naming the source, not the value."""
        env = os.environ if environ is None else environ
        if self.credential_env is not None:
            value = env.get(self.credential_env, "").strip()
            if not value:
                raise RootUnavailable(
                    f"kms: remote root: environment variable {self.credential_env} is not set"
                )
            where = f"environment variable {self.credential_env}"
        else:
            path = self.credential_file
            if path is None:  # excluded by from_uri
                raise RootError("kms: remote root: no credential configured")
            value = _read_private(path).strip()
            where = f"credential file {path}"
        if not _CREDENTIAL_RE.fullmatch(value):
            raise RootError(f"kms: remote root: {where} does not hold a credential")
        return value


def _base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(
            "keys.root: remote: needs an https:// URL of the KMS (remote:https://...)"
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError(
            "keys.root: the remote: URL takes no user info, query or fragment"
            " (the credential comes from credential-env= or credential-file=)"
        )
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError as e:
        raise ConfigError("keys.root: the remote: URL has an invalid port") from e
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _credential(params: Mapping[str, str]) -> tuple[str | None, Path | None]:
    env, file = params.get("credential-env"), params.get("credential-file")
    if (env is None) == (file is None):
        raise ConfigError(
            "keys.root: a remote: URI names exactly one of credential-env= or credential-file="
        )
    if env is not None and not _ENV_RE.fullmatch(env):
        raise ConfigError("keys.root: remote: credential-env= must name an environment variable")
    return env, Path(file).absolute() if file is not None else None


def _tls(params: Mapping[str, str], *, https: bool) -> tuple[Path | None, Path | None, Path | None]:
    ca, cert, key = (
        Path(params[k]).absolute() if k in params else None for k in ("ca", "cert", "key")
    )
    if not https and (ca or cert or key):
        raise ConfigError("keys.root: remote: ca=, cert= and key= need an https:// URL")
    if (cert is None) != (key is None):
        raise ConfigError("keys.root: remote: cert= and key= go together (mTLS)")
    return ca, cert, key


def _seconds(params: Mapping[str, str], name: str, default: float) -> float:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError as e:
        raise ConfigError(f"keys.root: remote: {name}= must be a number of seconds") from e
    if not 0 < value <= _MAX_TIMEOUT:
        raise ConfigError(f"keys.root: remote: {name}= must be in (0, {_MAX_TIMEOUT:g}] seconds")
    return value


def _read_private(path: Path) -> str:
    try:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            raise RootError(
                f"kms: remote root: credential file {path} is readable by others (chmod 600 it)"
            )
        return path.read_text("utf-8")
    except FileNotFoundError as e:
        raise RootUnavailable(f"kms: remote root: credential file {path} does not exist") from e
    except (OSError, UnicodeDecodeError) as e:
        raise RootUnavailable(f"kms: remote root: cannot read credential file {path}") from e
