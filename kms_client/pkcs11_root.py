"""Root key in a PKCS#11 HSM: KWKs wrapped inside the token and stored there.

URI grammar (RFC 7512 in spirit; values percent-encoded, each attribute at most once)::

    pkcs11:token=<token label>[;object=<root key label>][;type=secret-key]
          ?module-path=<path to the PKCS#11 module>
          [&pin-env=<environment variable holding the user PIN>]
          [&mechanism=aes-gcm|aes-key-wrap-pad]

Defaults: ``object=tokengate-root``, ``pin-env=TOKENGATE_HSM_PIN``,
``mechanism=aes-gcm``. ``pin-value`` is refused: a PIN never sits in config.
Example: ``pkcs11:token=tokengate;object=tokengate-root?module-path=
/usr/lib/softhsm/libsofthsm2.so&pin-env=TOKENGATE_HSM_PIN&mechanism=aes-gcm``.

Rules:
- The root is a sensitive, non-extractable AES-256 secret key in the token.
  It is generated there only when the caller passes ``create_root=True``
  (the ``tokengate keys`` init path); otherwise a missing key is an error.
- Key separation: for ``aes-gcm`` the root may encrypt/decrypt and must not
  wrap/unwrap; for ``aes-key-wrap-pad`` (RFC 5649, ``CKM_AES_KEY_WRAP_PAD``)
  the reverse. A key allowing both decrypt and unwrap is refused: anyone with
  the PIN could wrap another sensitive key under it and decrypt it out.
- KWK ``v``: 32 bytes from tokengate's RNG and the token's RNG, wrapped by
  the root inside the token (see ``pkcs11_wrap``), stored as a private
  ``CKO_DATA`` token object labelled ``<root label>-kwk-<v>``. The reference
  handed to the keyring names that label, the root's ``CKA_ID`` and the
  SHA-256 of the stored blob: on its own it recovers nothing.
- ``destroy_kwk`` destroys that object (``C_DestroyObject``): every keyring
  copy needing it stops opening. Destroying an absent object succeeds
  (idempotent after a crash); a reference for another root is refused.
- Every PKCS#11 call runs on the token's one worker thread (``pkcs11_session``).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

import pkcs11
from pkcs11 import KeyType, ObjectClass
from pkcs11 import exceptions as p11e

from kms_client import pkcs11_session, pkcs11_wrap
from kms_client.errors import RootAuthError, RootError, RootUnavailable, WrongRoot
from kms_client.pkcs11_session import TokenLink, error_name
from kms_client.pkcs11_wrap import WrapMechanism
from tokengate.errors import ConfigError

_PATH_ATTRS: Final = frozenset({"token", "object", "type"})
_QUERY_ATTRS: Final = frozenset({"module-path", "pin-env", "mechanism"})
_MAX_RANDOM: Final = 4096


@dataclass(frozen=True)
class Pkcs11RootConfig:
    """Where the root key lives and how KWKs are wrapped; nothing secret."""

    module_path: str
    token_label: str
    key_label: str = "tokengate-root"
    pin_env: str = "TOKENGATE_HSM_PIN"
    mechanism: WrapMechanism = "aes-gcm"

    @classmethod
    def from_uri(cls, uri: str) -> Pkcs11RootConfig:
        """Parse a ``pkcs11:`` URI (grammar in the module docstring)."""
        if not uri.startswith("pkcs11:"):
            raise ConfigError("kms: pkcs11: uri must start with 'pkcs11:'")
        path, _, query = uri[len("pkcs11:") :].partition("?")
        attrs = _attrs(path, ";", _PATH_ATTRS) | _attrs(query, "&", _QUERY_ATTRS)
        if attrs.get("type", "secret-key") != "secret-key":
            raise ConfigError("kms: pkcs11: uri type must be 'secret-key'")
        for required in ("token", "module-path"):
            if not attrs.get(required):
                raise ConfigError(f"kms: pkcs11: uri needs '{required}'")
        mechanism = attrs.get("mechanism", "aes-gcm")
        if mechanism not in ("aes-gcm", "aes-key-wrap-pad"):
            raise ConfigError("kms: pkcs11: uri mechanism must be aes-gcm or aes-key-wrap-pad")
        return cls(
            module_path=attrs["module-path"],
            token_label=attrs["token"],
            key_label=attrs.get("object") or "tokengate-root",
            pin_env=attrs.get("pin-env") or "TOKENGATE_HSM_PIN",
            mechanism="aes-gcm" if mechanism == "aes-gcm" else "aes-key-wrap-pad",
        )


def _attrs(text: str, sep: str, allowed: frozenset[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, text.split(sep)):
        name, eq, value = part.partition("=")
        if name == "pin-value":
            raise ConfigError("kms: pkcs11: uri pin-value is refused; name a variable in pin-env")
        if not eq or name not in allowed:
            raise ConfigError(f"kms: pkcs11: uri attribute {name!r} is not supported here")
        if name in out:
            raise ConfigError(f"kms: pkcs11: uri attribute {name!r} given twice")
        out[name] = unquote(value)
    return out


type _TokenCall[T] = Callable[[pkcs11.Session, pkcs11.Key], T]


class Pkcs11RootKey:
    """A :class:`kms_client.root.RootBackend` on a PKCS#11 token (HSM, SoftHSM2)."""

    def __init__(
        self,
        config: Pkcs11RootConfig,
        *,
        create_root: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._config = config
        self._create_root = create_root
        self._environ = os.environ if environ is None else environ
        self._link: TokenLink | None = None
        self._key: pkcs11.Key | None = None
        self._root_id = b""
        self._lifecycle = asyncio.Lock()

    @classmethod
    def from_uri(cls, uri: str, *, create_root: bool = False) -> Pkcs11RootKey:
        """Build from a ``pkcs11:`` URI; ``create_root`` lets open() generate a missing root."""
        return cls(Pkcs11RootConfig.from_uri(uri), create_root=create_root)

    @property
    def description(self) -> str:
        c = self._config
        return f"pkcs11:token={c.token_label};object={c.key_label}?mechanism={c.mechanism}"

    async def open(self) -> None:
        async with self._lifecycle:
            await self._open()

    async def _open(self) -> None:
        if self._link is not None:
            return
        c = self._config
        pin = self._environ.get(c.pin_env)
        if not pin:
            raise RootAuthError(f"kms: pkcs11: pin variable {c.pin_env} is not set")
        link = await asyncio.to_thread(pkcs11_session.acquire, c.module_path, c.token_label, pin)
        try:
            find = functools.partial(self._find_root, link.session)
            loop = asyncio.get_running_loop()
            self._key, self._root_id = await loop.run_in_executor(
                link.executor, self._guarded, find
            )
        except BaseException:
            await asyncio.to_thread(pkcs11_session.release, link)
            raise
        self._link = link

    async def close(self) -> None:
        async with self._lifecycle:
            link, self._link, self._key = self._link, None, None
            if link is not None:
                await asyncio.to_thread(pkcs11_session.release, link)

    async def create_kwk(self, version: int) -> tuple[bytes, bytes]:
        return await self._call(functools.partial(self._create_kwk, _checked(version)))

    async def open_kwk(self, version: int, reference: bytes) -> bytes:
        label, digest = self._check_reference(_checked(version), reference)
        return await self._call(functools.partial(self._open_kwk, label, digest))

    async def destroy_kwk(self, version: int, reference: bytes) -> None:
        label, digest = self._check_reference(_checked(version), reference)
        await self._call(functools.partial(self._destroy_kwk, label, digest))

    async def random(self, n: int) -> bytes:
        if not 0 < n <= _MAX_RANDOM:
            raise ValueError(f"kms: pkcs11: random length must be 1..{_MAX_RANDOM}")
        return await self._call(lambda session, _root: bytes(session.generate_random(n * 8)))

    async def _call[T](self, fn: _TokenCall[T]) -> T:
        link, key = self._link, self._key
        if link is None or key is None:
            raise RootUnavailable("kms: pkcs11: root is not open")
        bound = functools.partial(fn, link.session, key)
        return await asyncio.get_running_loop().run_in_executor(link.executor, self._guarded, bound)

    # Everything below runs on the token's worker thread.

    def _guarded[T](self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except p11e.PKCS11Error as e:
            token = self._config.token_label
            raise RootUnavailable(
                f"kms: pkcs11: call to token '{token}' failed ({error_name(e)})"
            ) from e

    def _find_root(self, session: pkcs11.Session) -> tuple[pkcs11.Key, bytes]:
        c = self._config
        where = f"'{c.key_label}' in token '{c.token_label}'"
        try:
            key = session.get_key(ObjectClass.SECRET_KEY, KeyType.AES, label=c.key_label)
        except p11e.NoSuchKey:
            if not self._create_root:
                raise WrongRoot(f"kms: pkcs11: no root key {where}") from None
            key = pkcs11_wrap.generate_root(session, c.key_label, c.mechanism)
        except p11e.MultipleObjectsReturned as e:
            raise RootError(f"kms: pkcs11: several root keys {where}") from e
        return key, pkcs11_wrap.check_root(key, c.mechanism, where)

    def _create_kwk(
        self, version: int, session: pkcs11.Session, root: pkcs11.Key
    ) -> tuple[bytes, bytes]:
        label = self._label(version)
        if pkcs11_wrap.read_blob(session, label) is not None:
            raise RootError(f"kms: pkcs11: kwk v{version} already exists in the token")
        kwk = pkcs11_wrap.new_kwk(session)
        blob = pkcs11_wrap.wrap(session, root, self._config.mechanism, kwk, self._aad(label))
        pkcs11_wrap.store_blob(session, label, blob)
        digest = hashlib.sha256(blob).hexdigest()
        if self._open_kwk(label, digest, session, root) != kwk:
            raise RootError(f"kms: pkcs11: kwk v{version} did not read back from the token")
        return kwk, self._reference(label, digest)

    def _open_kwk(
        self, label: str, digest: str, session: pkcs11.Session, root: pkcs11.Key
    ) -> bytes:
        blob = pkcs11_wrap.read_blob(session, label)
        if blob is None:
            raise WrongRoot(f"kms: pkcs11: kwk object '{label}' is not in the token (destroyed?)")
        _check_digest(label, digest, blob)
        return pkcs11_wrap.unwrap(root, self._config.mechanism, blob, self._aad(label), label)

    def _destroy_kwk(
        self, label: str, digest: str, session: pkcs11.Session, _root: pkcs11.Key
    ) -> None:
        objects = pkcs11_wrap.blob_objects(session, label)
        for obj in objects:
            _check_digest(label, digest, bytes(obj[pkcs11.Attribute.VALUE]))
        for obj in objects:
            obj.destroy()

    # References and labels.

    def _label(self, version: int) -> str:
        return f"{self._config.key_label}-kwk-{version}"

    def _aad(self, label: str) -> bytes:
        return pkcs11_wrap.KWK_INFO + _frame(label.encode()) + _frame(self._root_id)

    def _reference(self, label: str, digest: str) -> bytes:
        doc = {
            "format": 1,
            "scheme": "pkcs11",
            "label": label,
            "root-id": self._root_id.hex(),
            "object-sha256": digest,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    def _check_reference(self, version: int, reference: bytes) -> tuple[str, str]:
        """(object label, blob digest) if ``reference`` is for this root and version."""
        if self._link is None:
            raise RootUnavailable("kms: pkcs11: root is not open")
        label = self._label(version)
        try:
            doc = json.loads(reference)
        except ValueError:
            doc = None
        if not (
            isinstance(doc, dict)
            and doc.get("scheme") == "pkcs11"
            and doc.get("format") == 1
            and doc.get("label") == label
            and doc.get("root-id") == self._root_id.hex()
            and isinstance(doc.get("object-sha256"), str)
        ):
            raise WrongRoot(f"kms: pkcs11: kwk v{version} reference is for another root")
        return label, str(doc["object-sha256"])


def _check_digest(label: str, digest: str, blob: bytes) -> None:
    if not hmac.compare_digest(hashlib.sha256(blob).hexdigest(), digest):
        raise WrongRoot(f"kms: pkcs11: kwk object '{label}' does not match its reference")


def _checked(version: int) -> int:
    if version < 0:
        raise ValueError("kms: pkcs11: kwk version must be >= 0")
    return version


def _frame(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data
