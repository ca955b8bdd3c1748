"""``open_key_manager``: the one call the gateway makes at start-up.

It picks the root backend and the keyring store from ``KeysConfig``, refuses
insecure defaults in production (the auto-created development root file,
plain-text connections to a non-local Redis or PostgreSQL), auto-unseals
through the root, and starts the background task that picks up other
replicas' changes and rotates keys on schedule. A root that needs Shamir
shares (``local:shamir``) starts sealed; ``tokengate kms unseal`` delivers
the shares over the unseal socket (:mod:`kms_client.unseal_socket`).
Every failure is a :class:`~tokengate.errors.GatewayError` with a message
naming the cause: callers print it, never a traceback.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from kms_client.audit_port import Auditor
from kms_client.config import KeysConfig
from kms_client.control import ControlServer, default_control_dir
from kms_client.counting_root import CountingRoot
from kms_client.errors import KmsError
from kms_client.keyring_io import KeyringIO
from kms_client.local_root import LocalRootKey
from kms_client.manager import KeyManager
from kms_client.rng_install import RngInstaller
from kms_client.root import RootBackend
from kms_client.root_uri import DEV_ROOT_URI, is_dev_default, is_plaintext_remote, open_root
from kms_client.store import default_store_uri, open_store
from tokengate.errors import ConfigError, GatewayError


def build_key_manager(
    config: KeysConfig,
    *,
    data_dir: Path,
    auditor: Auditor,
    production: bool,
    now: Callable[[], datetime] | None = None,
) -> KeyManager:
    """A sealed KeyManager for ``config`` (no IO yet); ConfigError for a refused setting."""
    root, store_uri = check_keys_config(config, data_dir=data_dir, production=production)
    store = open_store(store_uri, name=config.keyring_name)
    io = KeyringIO(CountingRoot(root, auditor=auditor), store, name=config.keyring_name)
    return KeyManager(
        io,
        settings=config.purpose_settings(),
        auditor=auditor,
        now=now or (lambda: datetime.now(UTC)),
        refresh_interval=config.refresh_interval,
        rng=RngInstaller(reseed_interval=config.rng_reseed_interval),
    )


def check_keys_config(
    config: KeysConfig, *, data_dir: Path, production: bool
) -> tuple[RootBackend, str]:
    """The root backend and store URI ``config`` names; ConfigError for a refused setting.

    No IO: call it at config load time to fail fast (the gateway's production
    checks, the CLI before it opens anything).
    """
    root = open_root(config.root or DEV_ROOT_URI, data_dir=data_dir)
    store_uri = config.store or default_store_uri(data_dir)
    open_store(store_uri, name=config.keyring_name)  # refuses unknown schemes
    if production:
        if is_dev_default(root):
            raise ConfigError(
                "keys.root: production mode refuses the development root file;"
                " set keys.root to pkcs11:, aws-kms:// or an explicit local: source"
            )
        if is_plaintext_remote(root):
            raise ConfigError(
                "keys.root: production mode refuses remote: over plain http; use the KMS's"
                " https:// URL (with ca= for a private CA)"
            )
        _refuse_plaintext_store(store_uri)
    return root, store_uri


async def open_key_manager(
    config: KeysConfig,
    *,
    data_dir: Path,
    auditor: Auditor,
    production: bool,
    now: Callable[[], datetime] | None = None,
    background: bool = True,
) -> KeyManager:
    """Build, connect and auto-unseal the key manager; start its background task.

    With ``background`` (the gateway) it also starts the refresh/rotation task
    and the control socket; CLI commands pass ``background=False``.
    """
    manager = build_key_manager(
        config, data_dir=data_dir, auditor=auditor, production=production, now=now
    )
    await manager.store.open()
    try:
        if not needs_shares(manager):
            await manager.unseal(actor="startup")
    except GatewayError:
        await manager.close()
        raise
    if background:
        control_dir = Path(config.control_dir) if config.control_dir else None
        server = ControlServer(manager, control_dir or default_control_dir(data_dir))
        try:
            await server.start()
        except OSError as e:
            await manager.close()
            raise KmsError(f"kms: cannot listen on {server.path}: {e.strerror or e}") from e
        manager.on_close(server.close)
        manager.start()
    return manager


def needs_shares(manager: KeyManager) -> bool:
    """True when the root is ``local:shamir`` and still waits for its shares."""
    inner = manager.root_backend
    return isinstance(inner, LocalRootKey) and inner.needs_shares


def _refuse_plaintext_store(uri: str) -> None:
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if parts.scheme == "redis" and not _is_local(host):
        raise ConfigError("keys.store: production mode needs rediss:// (TLS) for a remote Redis")
    if parts.scheme in ("postgresql", "postgres") and not _is_local(host):
        mode = parse_qs(parts.query).get("sslmode", ["prefer"])[0]
        if mode not in ("require", "verify-ca", "verify-full"):
            raise ConfigError(
                "keys.store: production mode needs sslmode=require or verify-full for a remote"
                " PostgreSQL"
            )


def _is_local(host: str) -> bool:
    if host in ("", "localhost") or host.startswith("/"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
