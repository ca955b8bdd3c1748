"""Token-side KWK operations for the PKCS#11 root: blocking, run on the token's thread.

Blob format stored in the ``CKO_DATA`` object (one tag byte names the mechanism):

    aes-gcm:           0x01 || nonce(12) || AES-256-GCM(root, kwk, aad) (48 bytes)
    aes-key-wrap-pad:  0x02 || RFC 5649 wrap of kwk under root (40 bytes)

``aad`` = "tokengate/pkcs11/kwk/v1" || frame(object label) || frame(root CKA_ID),
binding the blob to its version and root. Key-wrap has no AAD: the object
label and the reference's digest do that binding there. A 96-bit random nonce
is safe: a root encrypts a handful of KWKs over its life.
"""

from __future__ import annotations

from typing import Final, Literal

import pkcs11
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11e
from pkcs11.types import DecryptMixin, EncryptMixin, UnwrapMixin, WrapMixin

from kms_client import rng
from kms_client.errors import RootError, WrongRoot

WrapMechanism = Literal["aes-gcm", "aes-key-wrap-pad"]
TAGS: Final[dict[WrapMechanism, int]] = {"aes-gcm": 1, "aes-key-wrap-pad": 2}
KWK_INFO: Final = b"tokengate/pkcs11/kwk/v1"
APPLICATION: Final = "tokengate"
_ROOT_ATTRS: Final = (
    Attribute.VALUE_LEN,
    Attribute.SENSITIVE,
    Attribute.EXTRACTABLE,
    Attribute.ENCRYPT,
    Attribute.DECRYPT,
    Attribute.WRAP,
    Attribute.UNWRAP,
    Attribute.ID,
)


def check_root(key: pkcs11.Key, mechanism: WrapMechanism, where: str) -> bytes:
    """Refuse a root that is not a sensitive AES-256 key fit for ``mechanism``; its CKA_ID."""
    attrs = key.get_attributes(list(_ROOT_ATTRS))
    if attrs[Attribute.VALUE_LEN] != 32:
        raise RootError(f"kms: pkcs11: root key {where} is not AES-256")
    if not attrs[Attribute.SENSITIVE] or attrs[Attribute.EXTRACTABLE]:
        raise RootError(f"kms: pkcs11: root key {where} must be sensitive and unextractable")
    if attrs[Attribute.DECRYPT] and attrs[Attribute.UNWRAP]:
        raise RootError(f"kms: pkcs11: root key {where} allows both decrypt and unwrap")
    if mechanism == "aes-gcm":
        fit = attrs[Attribute.ENCRYPT] and attrs[Attribute.DECRYPT]
    else:
        fit = attrs[Attribute.WRAP] and attrs[Attribute.UNWRAP]
    if not fit:
        raise RootError(f"kms: pkcs11: root key {where} does not allow {mechanism}")
    return bytes(attrs[Attribute.ID] or b"")


def generate_root(session: pkcs11.Session, label: str, mechanism: WrapMechanism) -> pkcs11.Key:
    """Generate a token-resident, sensitive, unextractable AES-256 root for ``mechanism`` only."""
    gcm = mechanism == "aes-gcm"
    return session.generate_key(
        KeyType.AES,
        256,
        label=label,
        id=rng.random_bytes(16),
        store=True,
        template={
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.MODIFIABLE: False,
            Attribute.ENCRYPT: gcm,
            Attribute.DECRYPT: gcm,
            Attribute.WRAP: not gcm,
            Attribute.UNWRAP: not gcm,
            Attribute.SIGN: False,
            Attribute.VERIFY: False,
            Attribute.DERIVE: False,
        },
    )


def new_kwk(session: pkcs11.Session) -> bytes:
    """32 bytes from tokengate's RNG and the token's C_GenerateRandom, mixed by HKDF."""
    ikm = rng.random_bytes(32) + _bytes(session.generate_random(256))
    return HKDF(SHA256(), 32, salt=None, info=KWK_INFO).derive(ikm)


def wrap(
    session: pkcs11.Session, root: pkcs11.Key, mechanism: WrapMechanism, kwk: bytes, aad: bytes
) -> bytes:
    """The blob (tag || wrapped KWK) made inside the token."""
    tag = bytes([TAGS[mechanism]])
    if mechanism == "aes-gcm":
        if not isinstance(root, EncryptMixin):
            raise RootError("kms: pkcs11: root key cannot encrypt")
        nonce = rng.random_bytes(12)
        params = pkcs11.GCMParams(nonce, aad, 128)
        return (
            tag
            + nonce
            + _bytes(root.encrypt(kwk, mechanism=Mechanism.AES_GCM, mechanism_param=params))
        )
    if not isinstance(root, WrapMixin):
        raise RootError("kms: pkcs11: root key cannot wrap")
    temp = session.create_object(
        {
            Attribute.CLASS: ObjectClass.SECRET_KEY,
            Attribute.KEY_TYPE: KeyType.AES,
            Attribute.TOKEN: False,
            Attribute.SENSITIVE: False,
            Attribute.EXTRACTABLE: True,
            Attribute.VALUE: kwk,
        }
    )
    try:
        if not isinstance(temp, pkcs11.Key):
            raise RootError("kms: pkcs11: token did not create a key object")
        return tag + _bytes(root.wrap_key(temp, mechanism=Mechanism.AES_KEY_WRAP_PAD))
    finally:
        temp.destroy()


def unwrap(
    root: pkcs11.Key, mechanism: WrapMechanism, blob: bytes, aad: bytes, label: str
) -> bytes:
    """The KWK inside ``blob``; WrongRoot when it does not open under this root."""
    if blob[:1] != bytes([TAGS[mechanism]]):
        raise WrongRoot(f"kms: pkcs11: kwk '{label}' was wrapped with another mechanism")
    try:
        kwk = _open_gcm(root, blob, aad) if mechanism == "aes-gcm" else _open_kw(root, blob)
    except p11e.PKCS11Error as e:
        raise WrongRoot(f"kms: pkcs11: kwk '{label}' does not unwrap under this root") from e
    if len(kwk) != 32:
        raise WrongRoot(f"kms: pkcs11: kwk '{label}' has the wrong length")
    return kwk


def _open_gcm(root: pkcs11.Key, blob: bytes, aad: bytes) -> bytes:
    if not isinstance(root, DecryptMixin):
        raise RootError("kms: pkcs11: root key cannot decrypt")
    params = pkcs11.GCMParams(blob[1:13], aad, 128)
    return _bytes(root.decrypt(blob[13:], mechanism=Mechanism.AES_GCM, mechanism_param=params))


def _open_kw(root: pkcs11.Key, blob: bytes) -> bytes:
    if not isinstance(root, UnwrapMixin):
        raise RootError("kms: pkcs11: root key cannot unwrap")
    temp = root.unwrap_key(
        ObjectClass.SECRET_KEY,
        KeyType.AES,
        blob[1:],
        mechanism=Mechanism.AES_KEY_WRAP_PAD,
        template={Attribute.TOKEN: False, Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True},
    )
    try:
        return bytes(temp[Attribute.VALUE])
    finally:
        temp.destroy()


def blob_objects(session: pkcs11.Session, label: str) -> list[pkcs11.Object]:
    """The token's tokengate data objects labelled ``label``."""
    query = {
        Attribute.CLASS: ObjectClass.DATA,
        Attribute.LABEL: label,
        Attribute.APPLICATION: APPLICATION,
    }
    return list(session.get_objects(query))


def read_blob(session: pkcs11.Session, label: str) -> bytes | None:
    """The one stored blob labelled ``label``, or None."""
    found = blob_objects(session, label)
    if len(found) > 1:
        raise RootError(f"kms: pkcs11: several kwk objects labelled '{label}'")
    return bytes(found[0][Attribute.VALUE]) if found else None


def store_blob(session: pkcs11.Session, label: str, blob: bytes) -> None:
    """Persist ``blob`` as a private token data object."""
    session.create_object(
        {
            Attribute.CLASS: ObjectClass.DATA,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.LABEL: label,
            Attribute.APPLICATION: APPLICATION,
            Attribute.VALUE: blob,
        }
    )


def _bytes(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise RootError("kms: pkcs11: token returned a stream where bytes were expected")
    return value
