"""Root key in AWS KMS: one destroyable KMS key per KWK version, double-wrapped under the root.

URI grammar (values percent-encoded; credentials never appear here, boto3's
default chain supplies them: env, profile, web identity, instance role)::

    aws-kms://<key id | key ARN | alias/<name> | alias ARN>
        [?region=<region>]                 required unless the key is an ARN
        [&endpoint=<https URL>]            override (http only to loopback)
        [&kwk-alias-prefix=alias/<name>]   default alias/tokengate-kwk
        [&deletion-window-days=7..30]      default 7
        [&connect-timeout=<s>][&read-timeout=<s>][&max-attempts=<n>]   3, 10, 3

KWK ``v`` (AWS KMS stores no data, so something in KMS must be destroyable):
- ``create_kwk`` makes a dedicated symmetric KMS key for version ``v``
  (alias ``<prefix>-v<v>``, tags naming tokengate, the root and ``v``), asks it
  for a data key (GenerateDataKey, AES_256) that becomes the KWK, and
  encrypts that data key's ciphertext again under the root key. Both calls
  carry the encryption context {tokengate:purpose=kwk, tokengate:kwk-version=v,
  tokengate:root=<root ARN>}. The reference holds the version key's ARN and
  the doubly wrapped blob: opening needs kms:Decrypt on the root AND on the
  version key.
- ``open_kwk`` checks the version key is Enabled (DescribeKey), then decrypts
  under the root and under the version key, each pinned by KeyId.
- ``destroy_kwk`` disables the version key at once (every Decrypt fails from
  then on), schedules its deletion after ``deletion-window-days`` (AWS's
  minimum is 7) and deletes its alias. What AWS guarantees and what it does
  not: until the window ends, a principal allowed kms:CancelKeyDeletion and
  kms:EnableKey can revive the KWK; after it, the key material is gone for
  good. Deny those two actions in the key policy and alert on them in
  CloudTrail. The gateway needs kms:CreateKey, CreateAlias, DeleteAlias,
  TagResource, DescribeKey, GenerateDataKey, Encrypt, Decrypt, DisableKey and
  ScheduleKeyDeletion for rotation; serving needs only DescribeKey and
  Decrypt (plus GenerateRandom and GenerateDataKey for data keys).

Data keys (``generate_data_key``/``decrypt_data_key``, a
``kms_client.datakey_cache.DataKeySource``) and ``encrypt``/``decrypt`` use the
root with the caller's context plus {tokengate:purpose=data}; callers may not
use the ``tokengate:`` context prefix, so KWK blobs never open through them.
Every boto3 call runs on this backend's own thread pool.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from kms_client.aws_kms_config import AwsKmsRootConfig, aws_error
from kms_client.datakey_cache import DataKey
from kms_client.errors import RootError, RootUnavailable, WrongRoot

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_kms.type_defs import KeyMetadataTypeDef

log = logging.getLogger(__name__)

_PURPOSE: Final = "tokengate:purpose"
_GONE: Final = frozenset({"NotFoundException", "KMSInvalidStateException", "DisabledException"})
_MAX_DIRECT: Final = 4096


class AwsKmsRootKey:
    """A :class:`kms_client.root.RootBackend` and data-key source on AWS KMS."""

    def __init__(self, config: AwsKmsRootConfig) -> None:
        self._config = config
        self._client: KMSClient | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._root_arn = ""
        self._lifecycle = asyncio.Lock()

    @classmethod
    def from_uri(cls, uri: str) -> AwsKmsRootKey:
        """Build from an ``aws-kms://`` URI (grammar in the module docstring)."""
        return cls(AwsKmsRootConfig.from_uri(uri))

    @property
    def description(self) -> str:
        return f"aws-kms://{self._config.key_id}?region={self._config.region}"

    async def open(self) -> None:
        async with self._lifecycle:
            await self._open()

    async def _open(self) -> None:
        if self._client is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="tokengate-aws-kms")
        try:
            loop = asyncio.get_running_loop()
            self._client = await loop.run_in_executor(self._executor, self._new_client)
            key = self._config.key_id
            meta = await self._call("describe root", lambda c: c.describe_key(KeyId=key))
            self._root_arn = _root_arn(key, meta["KeyMetadata"])
        except BaseException:
            await self._close()
            raise

    async def close(self) -> None:
        async with self._lifecycle:
            await self._close()

    async def _close(self) -> None:
        client, self._client = self._client, None
        executor, self._executor = self._executor, None
        if executor is None:
            return
        if client is not None:
            await asyncio.get_running_loop().run_in_executor(executor, client.close)
        executor.shutdown(wait=False)

    async def create_kwk(self, version: int) -> tuple[bytes, bytes]:
        ctx = self._kwk_context(version)
        alias = f"{self._config.kwk_alias_prefix}-v{version}"
        key_id, key_arn = await self._new_kwk_key(version)
        alias_made = False
        try:
            try:
                await self._call(
                    "alias kwk key", lambda c: c.create_alias(AliasName=alias, TargetKeyId=key_id)
                )
            except RootError as e:
                if _cause_code(e) == "AlreadyExistsException":
                    raise RootError(f"kms: aws-kms: kwk v{version} already exists ({alias})") from e
                raise
            alias_made = True
            dk = await self._call(
                "generate kwk",
                lambda c: c.generate_data_key(
                    KeyId=key_arn, KeySpec="AES_256", EncryptionContext=ctx
                ),
            )
            outer = await self._call(
                "wrap kwk",
                lambda c: c.encrypt(
                    KeyId=self._root_arn, Plaintext=dk["CiphertextBlob"], EncryptionContext=ctx
                ),
            )
            doc = {
                "format": 1,
                "scheme": "aws-kms",
                "version": version,
                "root": self._root_arn,
                "kwk-key-id": key_id,
                "kwk-key-arn": key_arn,
                "alias": alias,
                "blob": base64.b64encode(outer["CiphertextBlob"]).decode(),
            }
            reference = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
            kwk = dk["Plaintext"]
            if await self.open_kwk(version, reference) != kwk:
                raise RootError(f"kms: aws-kms: kwk v{version} did not read back")
        except Exception:
            await self._abandon(key_id, alias if alias_made else None)
            raise
        return kwk, reference

    async def _new_kwk_key(self, version: int) -> tuple[str, str]:
        """A fresh KMS key dedicated to KWK ``version``: (key id, ARN)."""
        created = await self._call(
            "create kwk key",
            lambda c: c.create_key(
                Description=f"tokengate KWK v{version} under {self._root_arn}",
                KeyUsage="ENCRYPT_DECRYPT",
                KeySpec="SYMMETRIC_DEFAULT",
                Tags=[
                    {"TagKey": "tokengate:role", "TagValue": "kwk"},
                    {"TagKey": "tokengate:kwk-version", "TagValue": str(version)},
                    {"TagKey": "tokengate:root", "TagValue": self._root_arn},
                ],
            ),
        )
        return created["KeyMetadata"]["KeyId"], created["KeyMetadata"]["Arn"]

    async def _abandon(self, key_id: str, alias: str | None) -> None:
        """Retire the key of a failed create; a failure here is logged, the original error wins."""
        try:
            await self._retire(key_id, alias=alias)
        except RootError as e:
            log.warning(
                "kms: aws-kms: could not retire kwk key %s after a failed create: %s", key_id, e
            )

    async def open_kwk(self, version: int, reference: bytes) -> bytes:
        doc = self._check_reference(version, reference)
        ctx = self._kwk_context(version)
        try:
            meta = (
                await self._call(
                    "describe kwk key", lambda c: c.describe_key(KeyId=doc["kwk-key-id"])
                )
            )["KeyMetadata"]
        except RootError as e:
            if _cause_code(e) in _GONE:
                raise WrongRoot(f"kms: aws-kms: kwk v{version} is destroyed (key not found)") from e
            raise
        if meta.get("KeyState") != "Enabled":
            raise WrongRoot(
                f"kms: aws-kms: kwk v{version} is destroyed (key {meta.get('KeyState')})"
            )
        blob = base64.b64decode(doc["blob"])
        inner = await self._call(
            "unwrap kwk",
            lambda c: c.decrypt(KeyId=self._root_arn, CiphertextBlob=blob, EncryptionContext=ctx),
        )
        plain = await self._call(
            "open kwk",
            lambda c: c.decrypt(
                KeyId=doc["kwk-key-arn"], CiphertextBlob=inner["Plaintext"], EncryptionContext=ctx
            ),
        )
        kwk = plain["Plaintext"]
        if len(kwk) != 32:
            raise WrongRoot(f"kms: aws-kms: kwk v{version} has the wrong length")
        return kwk

    async def destroy_kwk(self, version: int, reference: bytes) -> None:
        doc = self._check_reference(version, reference)
        await self._retire(doc["kwk-key-id"], alias=doc["alias"])

    async def random(self, n: int) -> bytes:
        if not 0 < n <= 1024:
            raise ValueError("kms: aws-kms: random length must be 1..1024")
        out = await self._call("generate random", lambda c: c.generate_random(NumberOfBytes=n))
        return out["Plaintext"]

    async def generate_data_key(self, context: Mapping[str, str]) -> DataKey:
        """A fresh AES-256 data key under the root, bound to ``context``."""
        ctx = _data_context(context)
        out = await self._call(
            "generate data key",
            lambda c: c.generate_data_key(
                KeyId=self._root_arn, KeySpec="AES_256", EncryptionContext=ctx
            ),
        )
        return DataKey(
            plaintext=out["Plaintext"], ciphertext=out["CiphertextBlob"], key_id=out["KeyId"]
        )

    async def decrypt_data_key(self, ciphertext: bytes, context: Mapping[str, str]) -> bytes:
        """The plaintext of a data key made by :meth:`generate_data_key` under ``context``."""
        return await self.decrypt(ciphertext, context)

    async def encrypt(self, plaintext: bytes, context: Mapping[str, str]) -> bytes:
        """Encrypt up to 4096 bytes directly under the root (KMS Encrypt)."""
        if len(plaintext) > _MAX_DIRECT:
            raise ValueError("kms: aws-kms: direct encrypt takes at most 4096 bytes")
        ctx = _data_context(context)
        out = await self._call(
            "encrypt",
            lambda c: c.encrypt(KeyId=self._root_arn, Plaintext=plaintext, EncryptionContext=ctx),
        )
        return out["CiphertextBlob"]

    async def decrypt(self, ciphertext: bytes, context: Mapping[str, str]) -> bytes:
        """Decrypt what :meth:`encrypt` or :meth:`generate_data_key` made under ``context``."""
        ctx = _data_context(context)
        out = await self._call(
            "decrypt",
            lambda c: c.decrypt(
                KeyId=self._root_arn, CiphertextBlob=ciphertext, EncryptionContext=ctx
            ),
        )
        return out["Plaintext"]

    # Internals.

    async def _retire(self, key_id: str, *, alias: str | None) -> None:
        """Disable now, schedule deletion, drop the alias, then check; done steps are fine."""
        window = self._config.deletion_window_days
        steps: list[tuple[str, Callable[[KMSClient], object]]] = [
            ("disable kwk key", lambda c: c.disable_key(KeyId=key_id)),
            (
                "schedule kwk deletion",
                lambda c: c.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=window),
            ),
        ]
        if alias is not None:
            steps.append(("delete kwk alias", lambda c: c.delete_alias(AliasName=alias)))
        for what, step in steps:
            try:
                await self._call(what, step)
            except RootError as e:
                if _cause_code(e) not in _GONE:
                    raise
        try:
            meta = await self._call("check kwk key", lambda c: c.describe_key(KeyId=key_id))
        except RootError as e:
            if _cause_code(e) == "NotFoundException":
                return
            raise
        state = meta["KeyMetadata"].get("KeyState")
        if state not in ("PendingDeletion", "PendingReplicaDeletion"):
            raise RootError(f"kms: aws-kms: kwk key {key_id} is {state}, not pending deletion")

    def _new_client(self) -> KMSClient:
        c = self._config
        cfg = Config(
            connect_timeout=c.connect_timeout,
            read_timeout=c.read_timeout,
            retries={"total_max_attempts": c.max_attempts, "mode": "standard"},
            user_agent_extra="tokengate",
        )
        session = boto3.session.Session()
        return session.client("kms", region_name=c.region, endpoint_url=c.endpoint, config=cfg)

    async def _call[T](self, what: str, fn: Callable[[KMSClient], T]) -> T:
        client, executor = self._client, self._executor
        if client is None or executor is None:
            raise RootUnavailable("kms: aws-kms: root is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, fn, client)
        except (ClientError, BotoCoreError) as e:
            raise aws_error(what, self._config, e) from e

    def _kwk_context(self, version: int) -> dict[str, str]:
        if version < 0:
            raise ValueError("kms: aws-kms: kwk version must be >= 0")
        return {
            _PURPOSE: "kwk",
            "tokengate:kwk-version": str(version),
            "tokengate:root": self._root_arn,
        }

    def _check_reference(self, version: int, reference: bytes) -> dict[str, str]:
        if self._client is None:
            raise RootUnavailable("kms: aws-kms: root is not open")
        try:
            doc = json.loads(reference)
        except ValueError:
            doc = None
        fields = ("kwk-key-id", "kwk-key-arn", "alias", "blob")
        if not (
            isinstance(doc, dict)
            and doc.get("scheme") == "aws-kms"
            and doc.get("format") == 1
            and doc.get("version") == version
            and doc.get("root") == self._root_arn
            and all(isinstance(doc.get(f), str) for f in fields)
        ):
            raise WrongRoot(f"kms: aws-kms: kwk v{version} reference is for another root")
        return {f: str(doc[f]) for f in fields}


def _root_arn(key: str, meta: KeyMetadataTypeDef) -> str:
    if meta.get("KeyState") != "Enabled":
        raise WrongRoot(f"kms: aws-kms: root key {key} is {meta.get('KeyState')}")
    # KeyUsage is checked only when present (moto omits it; AWS always sends it).
    if meta.get("KeySpec") != "SYMMETRIC_DEFAULT" or meta.get("KeyUsage", "ENCRYPT_DECRYPT") != (
        "ENCRYPT_DECRYPT"
    ):
        raise RootError(f"kms: aws-kms: root key {key} is not a symmetric encryption key")
    return meta["Arn"]


def _data_context(context: Mapping[str, str]) -> dict[str, str]:
    if any(k.startswith("tokengate:") for k in context):
        raise ValueError("kms: aws-kms: the 'tokengate:' encryption-context prefix is reserved")
    return {**context, _PURPOSE: "data"}


def _cause_code(e: BaseException) -> str:
    """The AWS error code behind a RootError, or ''."""
    cause = e.__cause__
    return (
        str(cause.response.get("Error", {}).get("Code", ""))
        if isinstance(cause, ClientError)
        else ""
    )
