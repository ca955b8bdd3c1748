"""Choosing the root backend by URI (``keys.root``).

Grammar:
- ``local:`` (or ``local:dev``): development default. A 0600 root file
  ``<data_dir>/kms/root.key`` is created on first use, with one warning;
  refused in production.
- ``local:file=PATH``, ``local:env=VAR``, ``local:passphrase-env=VAR``,
  ``local:passphrase-file=PATH``, ``local:shamir``: an explicit local root;
  an optional ``;table=PATH`` moves the key table (default
  ``<data_dir>/kms/root-kwks.json``).
- ``pkcs11:...``: :class:`kms_client.pkcs11_root.Pkcs11RootKey` (RFC 7512 URI).
- ``aws-kms://...``: :class:`kms_client.aws_kms_root.AwsKmsRootKey`.
- ``remote:https://KMS;credential-env=VAR`` (or ``credential-file=PATH``, plus
  ``ca=``, ``cert=``/``key=``, ``timeout=``, ``connect-timeout=``):
  :class:`kms_client.remote_root.RemoteRootKey`, the tokengate KMS service
  (grammar in :mod:`kms_client.remote_root_config`); plain ``http://`` is
  refused in production.

Backends other than ``local:`` are imported only when configured, so their
client libraries stay out of start-up otherwise. Never a fallback: a root
that fails to open stops start-up with its own error.
"""

from __future__ import annotations

from pathlib import Path

from kms_client.local_root import LocalRootKey, LocalRootSpec
from kms_client.root import RootBackend
from tokengate.errors import ConfigError

DEV_ROOT_URI = "local:"


def default_table(data_dir: Path) -> Path:
    """Where a local root keeps its KWK table unless ``table=`` says otherwise."""
    return (data_dir / "kms" / "root-kwks.json").absolute()


def parse_local(uri: str, *, data_dir: Path) -> LocalRootSpec:
    """The :class:`LocalRootSpec` of a ``local:`` URI; ConfigError naming the problem."""
    body = uri.removeprefix("local:").strip()
    params: dict[str, str] = {}
    for part in filter(None, body.split(";")):
        key, eq, value = part.partition("=")
        key = key.strip()
        if key in params:
            raise ConfigError(f"keys.root: '{key}' given twice in local: URI")
        if not eq and key not in ("dev", "shamir"):
            raise ConfigError(f"keys.root: local: URI part '{key}' needs '=value'")
        params[key] = value.strip()
    table_param = params.pop("table", None)
    table = Path(table_param).absolute() if table_param else default_table(data_dir)
    if not params or "dev" in params:
        if params.keys() - {"dev"}:
            raise ConfigError("keys.root: 'local:dev' takes no other source")
        return LocalRootSpec("dev", str((data_dir / "kms" / "root.key").absolute()), table)
    if len(params) != 1:
        raise ConfigError("keys.root: a local: URI names exactly one source")
    ((source, location),) = params.items()
    if source == "shamir":
        return LocalRootSpec("shamir", "", table)
    if source not in ("file", "env", "passphrase-env", "passphrase-file"):
        raise ConfigError(
            f"keys.root: unknown local source '{source}' (use file=, env=, passphrase-env=,"
            " passphrase-file= or shamir)"
        )
    if not location:
        raise ConfigError(f"keys.root: local:{source}= needs a value")
    if source.endswith("file"):
        location = str(Path(location).absolute())
    return LocalRootSpec(source, location, table)


def open_root(uri: str, *, data_dir: Path) -> RootBackend:
    """Build (not yet open) the root backend for ``uri``."""
    scheme = uri.split(":", 1)[0] if ":" in uri else ""
    if scheme == "local":
        return LocalRootKey(parse_local(uri, data_dir=data_dir))
    if scheme == "pkcs11":
        from kms_client.pkcs11_root import Pkcs11RootKey

        return Pkcs11RootKey.from_uri(uri)
    if scheme == "aws-kms":
        from kms_client.aws_kms_root import AwsKmsRootKey

        return AwsKmsRootKey.from_uri(uri)
    if scheme == "remote":
        from kms_client.remote_root import RemoteRootKey

        return RemoteRootKey.from_uri(uri)
    raise ConfigError(
        f"keys.root: unknown root scheme '{scheme}' (use local:, pkcs11:, aws-kms:// or remote:)"
    )


def is_dev_default(root: RootBackend) -> bool:
    """True for the auto-created development root file (refused in production)."""
    return isinstance(root, LocalRootKey) and root.is_dev_default


def is_plaintext_remote(root: RootBackend) -> bool:
    """True for a ``remote:`` root reached over plain http (refused in production)."""
    from kms_client.remote_root import RemoteRootKey

    return isinstance(root, RemoteRootKey) and root.plaintext
