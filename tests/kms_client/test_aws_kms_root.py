"""AwsKmsRootKey against a real moto KMS server: KWK lifecycle, data keys, clear errors."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

import boto3
import pytest
from prometheus_client import CollectorRegistry

from kms_client.aws_kms_config import AwsKmsRootConfig
from kms_client.aws_kms_root import AwsKmsRootKey
from kms_client.datakey_cache import CachingDataKeys, DataKeyCacheMetrics, DataKeySource
from kms_client.errors import RootAuthError, RootError, RootUnavailable, WrongRoot
from kms_client.root import RootBackend
from tests.conftest import free_port
from tests.kms_client.conftest import MotoServer
from tokengate.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

pytestmark = pytest.mark.usefixtures("aws_test_credentials")

Factory = Callable[..., Awaitable[AwsKmsRootKey]]


def kms(moto: MotoServer) -> KMSClient:
    return boto3.client("kms", region_name=moto.region, endpoint_url=moto.endpoint)


@pytest.fixture
def root_alias(moto_server: MotoServer) -> str:
    """A fresh KMS key behind a unique alias on the worker's moto server."""
    name = f"alias/tg-root-{uuid.uuid4().hex[:10]}"
    client = kms(moto_server)
    key_id = client.create_key(Description="tokengate test root")["KeyMetadata"]["KeyId"]
    client.create_alias(AliasName=name, TargetKeyId=key_id)
    return name


@pytest.fixture
def prefix() -> str:
    return f"alias/tg-kwk-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def make_root(moto_server: MotoServer, prefix: str) -> AsyncIterator[Factory]:
    opened: list[AwsKmsRootKey] = []

    async def make(key: str, *, kwk_prefix: str | None = None, extra: str = "") -> AwsKmsRootKey:
        uri = (
            f"aws-kms://{key}?region={moto_server.region}&endpoint={moto_server.endpoint}"
            f"&kwk-alias-prefix={kwk_prefix or prefix}{extra}"
        )
        root = AwsKmsRootKey.from_uri(uri)
        opened.append(root)
        await root.open()
        return root

    yield make
    for root in opened:
        await root.close()


def key_state(moto: MotoServer, key_id: str) -> str:
    return str(kms(moto).describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"])


async def test_create_open_destroy_round_trip(
    make_root: Factory, moto_server: MotoServer, root_alias: str, prefix: str
) -> None:
    root = await make_root(root_alias)
    backend: RootBackend = root  # mypy checks the protocol
    kwk, ref = await backend.create_kwk(1)
    assert len(kwk) == 32
    assert await root.open_kwk(1, ref) == kwk
    kwk2, ref2 = await root.create_kwk(2)
    assert kwk2 != kwk
    again = await make_root(root_alias)
    assert await again.open_kwk(1, ref) == kwk

    doc = json.loads(ref)
    assert kwk not in base64.b64decode(doc["blob"])
    assert key_state(moto_server, doc["kwk-key-id"]) == "Enabled"
    aliases = kms(moto_server).list_aliases(KeyId=doc["kwk-key-id"])["Aliases"]
    assert [a["AliasName"] for a in aliases] == [f"{prefix}-v1"]

    await root.destroy_kwk(1, ref)
    assert key_state(moto_server, doc["kwk-key-id"]) == "PendingDeletion"
    with pytest.raises(WrongRoot, match="kwk v1 is destroyed"):
        await again.open_kwk(1, ref)
    await root.destroy_kwk(1, ref)  # idempotent
    assert await root.open_kwk(2, ref2) == kwk2


async def test_destroy_disables_before_deletion(
    make_root: Factory, moto_server: MotoServer, root_alias: str
) -> None:
    root = await make_root(root_alias)
    _, ref = await root.create_kwk(1)
    key_id = json.loads(ref)["kwk-key-id"]
    kms(moto_server).disable_key(KeyId=key_id)  # an operator disabled it
    with pytest.raises(WrongRoot, match=r"kwk v1 is destroyed \(key Disabled\)"):
        await root.open_kwk(1, ref)


async def test_existing_version_is_refused_and_cleaned_up(
    make_root: Factory, moto_server: MotoServer, root_alias: str, prefix: str
) -> None:
    root = await make_root(root_alias)
    kwk, ref = await root.create_kwk(1)
    with pytest.raises(RootError, match="kwk v1 already exists"):
        await root.create_kwk(1)
    assert await root.open_kwk(1, ref) == kwk
    # The key made for the refused attempt was retired, not left enabled.
    assert enabled_kwk_keys(moto_server, json.loads(ref)["root"], 1) == [
        json.loads(ref)["kwk-key-id"]
    ]


def enabled_kwk_keys(moto: MotoServer, root_arn: str, version: int) -> list[str]:
    client = kms(moto)
    found = []
    for key in client.list_keys()["Keys"]:
        tags = {
            t["TagKey"]: t["TagValue"]
            for t in client.list_resource_tags(KeyId=key["KeyId"])["Tags"]
        }
        if (
            tags.get("tokengate:root") == root_arn
            and tags.get("tokengate:kwk-version") == str(version)
            and key_state(moto, key["KeyId"]) == "Enabled"
        ):
            found.append(key["KeyId"])
    return found


async def test_kwk_of_one_root_does_not_open_under_another(
    make_root: Factory, moto_server: MotoServer, root_alias: str, prefix: str
) -> None:
    a = await make_root(root_alias)
    other = f"alias/tg-root-{uuid.uuid4().hex[:10]}"
    client = kms(moto_server)
    client.create_alias(AliasName=other, TargetKeyId=client.create_key()["KeyMetadata"]["KeyId"])
    b = await make_root(other, kwk_prefix=prefix + "-b")
    _, ref = await a.create_kwk(1)
    with pytest.raises(WrongRoot, match="reference is for another root"):
        await b.open_kwk(1, ref)
    with pytest.raises(WrongRoot, match="reference is for another root"):
        await b.destroy_kwk(1, ref)
    # Forge the reference so only KMS can refuse: the blob is root A's ciphertext.
    forged = json.loads(ref)
    forged["root"] = json.loads((await b.create_kwk(5))[1])["root"]
    with pytest.raises(RootError) as info:
        await b.open_kwk(1, json.dumps(forged).encode())
    assert isinstance(
        info.value, WrongRoot | RootAuthError
    )  # moto: AccessDenied; AWS: IncorrectKey


@pytest.mark.parametrize("reference", [b"", b"not json", b"[]", b'{"scheme":"pkcs11"}'])
async def test_garbage_reference_refused(
    make_root: Factory, root_alias: str, reference: bytes
) -> None:
    root = await make_root(root_alias)
    with pytest.raises(WrongRoot, match="another root"):
        await root.open_kwk(1, reference)


async def test_version_in_reference_must_match(make_root: Factory, root_alias: str) -> None:
    root = await make_root(root_alias)
    _, ref = await root.create_kwk(1)
    with pytest.raises(WrongRoot, match="another root"):
        await root.open_kwk(2, ref)


async def test_missing_root_key(make_root: Factory) -> None:
    with pytest.raises(WrongRoot, match=r"describe root: key not found \(NotFoundException\)"):
        await make_root("alias/tg-does-not-exist")


async def test_disabled_root_key(make_root: Factory, moto_server: MotoServer) -> None:
    client = kms(moto_server)
    key_id = client.create_key()["KeyMetadata"]["KeyId"]
    client.disable_key(KeyId=key_id)
    with pytest.raises(WrongRoot, match=f"root key {key_id} is Disabled"):
        await make_root(key_id)


async def test_root_must_be_symmetric(make_root: Factory, moto_server: MotoServer) -> None:
    client = kms(moto_server)
    key_id = client.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    with pytest.raises(RootError, match="not a symmetric encryption key"):
        await make_root(key_id)


async def test_unreachable_endpoint(root_alias: str) -> None:
    port = free_port()  # nothing listens here
    uri = (
        f"aws-kms://{root_alias}?region=us-east-1&endpoint=http://127.0.0.1:{port}"
        "&connect-timeout=1&max-attempts=2"
    )
    root = AwsKmsRootKey.from_uri(uri)
    with pytest.raises(RootUnavailable, match=f"cannot reach kms at http://127.0.0.1:{port}"):
        await root.open()
    with pytest.raises(RootUnavailable, match="not open"):
        await root.open_kwk(1, b"{}")


async def test_access_denied_names_the_cause_not_the_credentials(
    make_root: Factory, moto_server: MotoServer
) -> None:
    # A ciphertext of another "account's" key cannot be pinned to ours: moto answers
    # AccessDenied for a KeyId mismatch, which must surface as RootAuthError.
    client = kms(moto_server)
    a, b = (client.create_key()["KeyMetadata"]["KeyId"] for _ in range(2))
    blob = client.encrypt(
        KeyId=a, Plaintext=b"x" * 32, EncryptionContext={"tokengate:purpose": "data"}
    )["CiphertextBlob"]
    root = await make_root(b)
    with pytest.raises(RootError) as info:
        await root.decrypt(blob, {})
    assert isinstance(info.value, RootAuthError | WrongRoot)
    assert "testing-secret-key" not in str(info.value)
    assert "testing-access-key" not in str(info.value)


async def test_no_credentials(
    moto_server: MotoServer, root_alias: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    uri = f"aws-kms://{root_alias}?region=us-east-1&endpoint={moto_server.endpoint}&max-attempts=1"
    root = AwsKmsRootKey.from_uri(uri)
    with pytest.raises(RootAuthError, match="no usable aws credentials"):
        await root.open()


async def test_random(make_root: Factory, root_alias: str) -> None:
    root = await make_root(root_alias)
    a, b = await root.random(32), await root.random(32)
    assert len(a) == len(b) == 32
    assert a != b
    with pytest.raises(ValueError, match="random length"):
        await root.random(0)


async def test_data_keys_bound_to_context(make_root: Factory, root_alias: str) -> None:
    root = await make_root(root_alias)
    dk = await root.generate_data_key({"tenant": "t1"})
    assert len(dk.plaintext) == 32
    assert dk.plaintext not in dk.ciphertext
    assert "plaintext" not in repr(dk)
    assert await root.decrypt_data_key(dk.ciphertext, {"tenant": "t1"}) == dk.plaintext
    with pytest.raises(WrongRoot, match="does not open"):
        await root.decrypt_data_key(dk.ciphertext, {"tenant": "t2"})


async def test_encrypt_decrypt_with_context(make_root: Factory, root_alias: str) -> None:
    root = await make_root(root_alias)
    ct = await root.encrypt(b"secret", {"purpose": "x"})
    assert await root.decrypt(ct, {"purpose": "x"}) == b"secret"
    with pytest.raises(WrongRoot, match="does not open"):
        await root.decrypt(ct, {})
    with pytest.raises(ValueError, match="at most 4096"):
        await root.encrypt(b"x" * 4097, {})


async def test_reserved_context_prefix_keeps_kwk_blobs_out_of_data_api(
    make_root: Factory, root_alias: str
) -> None:
    root = await make_root(root_alias)
    _, ref = await root.create_kwk(1)
    doc = json.loads(ref)
    ctx = {"tokengate:purpose": "kwk", "tokengate:kwk-version": "1", "tokengate:root": doc["root"]}
    with pytest.raises(ValueError, match="reserved"):
        await root.decrypt(base64.b64decode(doc["blob"]), ctx)
    # Without the reserved keys the data context differs, so KMS refuses.
    with pytest.raises(WrongRoot, match="does not open"):
        await root.decrypt(base64.b64decode(doc["blob"]), {})


async def test_cached_data_keys_against_kms(make_root: Factory, root_alias: str) -> None:
    root = await make_root(root_alias)
    source: DataKeySource = root
    registry = CollectorRegistry()
    cache = CachingDataKeys(source, max_uses=2, name="aws", metrics=DataKeyCacheMetrics(registry))
    a = await cache.for_encrypt({"tenant": "t1"}, 10)
    b = await cache.for_encrypt({"tenant": "t1"}, 10)
    c = await cache.for_encrypt({"tenant": "t1"}, 10)
    assert a == b
    assert c != a
    assert await cache.for_decrypt(a.ciphertext, {"tenant": "t1"}) == a.plaintext
    labels = {"cache": "aws", "op": "encrypt"}
    assert registry.get_sample_value("tokengate_datakey_cache_hits_total", labels) == 1
    assert registry.get_sample_value("tokengate_datakey_cache_misses_total", labels) == 2


def test_description_has_no_secrets(root_alias: str) -> None:
    root = AwsKmsRootKey.from_uri(f"aws-kms://{root_alias}?region=eu-west-1")
    assert root.description == f"aws-kms://{root_alias}?region=eu-west-1"


ARN = "arn:aws:kms:eu-central-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

URI_OK = [
    (f"aws-kms://{ARN}", AwsKmsRootConfig(key_id=ARN, region="eu-central-1")),
    (
        "aws-kms://alias/root?region=us-west-2&endpoint=https://kms.example:8443"
        "&kwk-alias-prefix=alias/app-kwk&deletion-window-days=30&connect-timeout=2"
        "&read-timeout=5&max-attempts=5",
        AwsKmsRootConfig(
            key_id="alias/root",
            region="us-west-2",
            endpoint="https://kms.example:8443",
            kwk_alias_prefix="alias/app-kwk",
            deletion_window_days=30,
            connect_timeout=2.0,
            read_timeout=5.0,
            max_attempts=5,
        ),
    ),
    (
        "aws-kms://1234abcd-12ab-34cd-56ef-1234567890ab?region=us-east-1&endpoint=http://127.0.0.1:5000",
        AwsKmsRootConfig(
            key_id="1234abcd-12ab-34cd-56ef-1234567890ab",
            region="us-east-1",
            endpoint="http://127.0.0.1:5000",
        ),
    ),
]

URI_BAD = [
    ("kms://alias/x?region=us-east-1", "must start with"),
    ("aws-kms://?region=us-east-1", "needs a key id"),
    ("aws-kms://alias/x", "needs region="),
    (f"aws-kms://{ARN}?region=us-east-1", "differs from the key ARN"),
    ("aws-kms://arn:aws:s3:::bucket", "not a KMS key"),
    ("aws-kms://alias/x?region=us-east-1&endpoint=http://kms.example", "http only to loopback"),
    ("aws-kms://alias/x?region=us-east-1&endpoint=https://u:p@kms.example", "credentials"),
    ("aws-kms://alias/x?region=us-east-1&secret_key=abc", "'secret_key' is not supported"),
    ("aws-kms://alias/x?region=us-east-1&region=us-east-2", "given twice"),
    ("aws-kms://alias/x?region=us-east-1&deletion-window-days=3", r"within 7\.\.30"),
    ("aws-kms://alias/x?region=us-east-1&max-attempts=many", "must be a number"),
    ("aws-kms://alias/x?region=us-east-1&kwk-alias-prefix=alias/aws/x", "alias/<name>"),
    ("aws-kms://alias/x?region=us-east-1&kwk-alias-prefix=kwk", "alias/<name>"),
]


@pytest.mark.parametrize(("uri", "expected"), URI_OK)
def test_uri_parses(uri: str, expected: AwsKmsRootConfig) -> None:
    assert AwsKmsRootConfig.from_uri(uri) == expected


@pytest.mark.parametrize(("uri", "message"), URI_BAD)
def test_uri_refused(uri: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        AwsKmsRootConfig.from_uri(uri)
    assert "abc" not in str(info.value)
