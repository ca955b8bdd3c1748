"""tee.envelope: the double envelope, the sealed response and the KMS release wrapping.

Known shapes, round trips, and tamper cases: any flipped bit, any changed
binding field, any other key fails with the one opaque EnvelopeError.
"""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from tee.envelope import (
    SUITE,
    Binding,
    Inner,
    open_inner,
    open_outer,
    open_release,
    open_response,
    parse_envelope,
    seal,
    seal_release,
    seal_response,
)
from tee.errors import EnvelopeError, JobRefused
from tee.wire import b64d, b64e, canonical_json

WORKER = X25519PrivateKey.generate()
WORKER_PUB = WORKER.public_key().public_bytes_raw()
OTHER = X25519PrivateKey.generate()
K2 = bytes(range(32))
BINDING = Binding(
    tee_id="tee-1",
    worker_key=WORKER_PUB,
    job="card_check",
    tenant="acme",
    request_id="req-1",
    grant_id="g-1",
    expires_at=1_900_000_000,
)
VALUES = ["4111111111111111", "", "ünïcode ✓"]


def worker_open(
    envelope: dict[str, object], key: X25519PrivateKey = WORKER, k2: bytes = K2
) -> tuple[bytes, list[str]]:
    parsed = parse_envelope(envelope)
    inner = open_outer(parsed, key)
    return inner.response_key, open_inner(parsed.binding, inner, k2)


def test_round_trip() -> None:
    sealed = seal(BINDING, K2, VALUES)
    response_key, values = worker_open(sealed.envelope)
    assert response_key == sealed.response_key
    assert values == VALUES
    answer = seal_response(BINDING, response_key, values=["ok", "no", "ok"])
    assert open_response(BINDING, sealed.response_key, answer) == ["ok", "no", "ok"]


def test_envelope_shape_follows_the_doc() -> None:
    sealed = seal(BINDING, K2, VALUES)
    env = sealed.envelope
    assert set(env) == {"v", "binding", "sealed"}
    assert env["v"] == 1
    assert env["binding"] == {
        "tee_id": "tee-1",
        "worker_key": b64e(WORKER_PUB),
        "job": "card_check",
        "tenant": "acme",
        "request_id": "req-1",
        "grant_id": "g-1",
        "expires_at": 1_900_000_000,
    }
    assert len(sealed.response_key) == 32


def test_layers_are_spelled_as_the_doc_says() -> None:
    """Decrypt by hand with the primitives the doc names, not through the module."""
    sealed = seal(BINDING, K2, ["x"])
    info = b"tokengate-tee-envelope/1\x00" + canonical_json(BINDING.to_json())
    assert BINDING.info() == info
    plain = SUITE.decrypt(b64d(sealed.envelope["sealed"]), WORKER, info)
    r, n2, ct2 = plain[:32], plain[32:44], plain[44:]
    assert r == sealed.response_key
    assert AESGCM(K2).decrypt(n2, ct2, info) == b'{"values":["x"]}'
    answer = seal_response(BINDING, r, error="job_failed")
    ct = AESGCM(r).decrypt(b64d(answer["nonce"]), b64d(answer["ct"]), info + b"response")
    assert ct == b'{"error":"job_failed"}'
    assert set(answer) == {"v", "nonce", "ct"}


def test_info_is_canonical_json() -> None:
    assert BINDING.info() == (
        b'tokengate-tee-envelope/1\x00{"expires_at":1900000000,"grant_id":"g-1","job":"card_check",'
        b'"request_id":"req-1","tee_id":"tee-1","tenant":"acme","worker_key":"'
        + b64e(WORKER_PUB).encode()
        + b'"}'
    )
    assert BINDING.release_info().startswith(b"tokengate-kbs-release/1\x00{")
    assert BINDING.release_info().endswith(canonical_json(BINDING.to_json()))


def test_error_response_raises_job_refused_with_its_code() -> None:
    r = os.urandom(32)
    with pytest.raises(JobRefused) as e:
        open_response(BINDING, r, seal_response(BINDING, r, error="job_timeout"))
    assert e.value.code == "job_timeout"


@pytest.mark.parametrize(
    ("values", "error"),
    [(None, None), (["a"], "job_failed"), (None, "Bad Code"), (None, ""), ("abc", None)],
    ids=["neither", "both", "bad-code", "empty-code", "str-not-list"],
)
def test_seal_response_refuses_bad_results(values: list[str] | None, error: str | None) -> None:
    with pytest.raises(EnvelopeError):
        seal_response(BINDING, K2, values=values, error=error)


def test_wrong_private_key_fails() -> None:
    sealed = seal(BINDING, K2, VALUES)
    with pytest.raises(EnvelopeError, match="layer 1"):
        worker_open(sealed.envelope, key=OTHER)


def test_wrong_one_time_key_fails() -> None:
    sealed = seal(BINDING, K2, VALUES)
    with pytest.raises(EnvelopeError, match="layer 2"):
        worker_open(sealed.envelope, k2=bytes(32))


CHANGES: dict[str, object] = {
    "tee_id": "tee-2",
    "worker_key": OTHER.public_key().public_bytes_raw(),
    "job": "ssn_check",
    "tenant": "evil",
    "request_id": "req-2",
    "grant_id": "g-2",
    "expires_at": 1_900_000_001,
}


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_any_changed_binding_field_fails_every_layer(name: str) -> None:
    sealed = seal(BINDING, K2, VALUES)
    changed = dataclasses.replace(BINDING, **{name: CHANGES[name]})  # type: ignore[arg-type]
    tampered = dict(sealed.envelope, binding=changed.to_json())
    with pytest.raises(EnvelopeError, match="layer 1"):
        worker_open(tampered)
    # Layer 2 and the response are bound too, even with layer 1 opened honestly.
    inner = open_outer(parse_envelope(sealed.envelope), WORKER)
    with pytest.raises(EnvelopeError, match="layer 2"):
        open_inner(changed, inner, K2)
    answer = seal_response(BINDING, sealed.response_key, values=["v"])
    with pytest.raises(EnvelopeError):
        open_response(changed, sealed.response_key, answer)
    wrapped = seal_release(BINDING, K2)
    if name != "worker_key":
        with pytest.raises(EnvelopeError):
            open_release(changed, wrapped, WORKER)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_flipped_bit_in_sealed_fails(data: st.DataObject) -> None:
    sealed = seal(BINDING, K2, VALUES)
    raw = bytearray(b64d(sealed.envelope["sealed"]))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(EnvelopeError):
        worker_open(dict(sealed.envelope, sealed=b64e(bytes(raw))))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_flipped_bit_in_binding_json_fails(data: st.DataObject) -> None:
    """Flip a bit of the binding as sent: refused as malformed or as not opening."""
    sealed = seal(BINDING, K2, VALUES)
    raw = bytearray(json.dumps(sealed.envelope["binding"]).encode())
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    try:
        binding = json.loads(raw)
    except ValueError:
        return  # not JSON any more: the HTTP layer refuses it
    with pytest.raises(EnvelopeError):
        worker_open(dict(sealed.envelope, binding=binding))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_flipped_bit_in_layer2_fails(data: st.DataObject) -> None:
    sealed = seal(BINDING, K2, VALUES)
    inner = open_outer(parse_envelope(sealed.envelope), WORKER)
    blob = bytearray(inner.nonce + inner.ciphertext)
    bit = data.draw(st.integers(0, len(blob) * 8 - 1))
    blob[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(EnvelopeError):
        open_inner(BINDING, Inner(inner.response_key, bytes(blob[:12]), bytes(blob[12:])), K2)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_flipped_bit_in_response_fails(data: st.DataObject) -> None:
    r = os.urandom(32)
    answer = seal_response(BINDING, r, values=["fine"])
    field = data.draw(st.sampled_from(["nonce", "ct"]))
    raw = bytearray(b64d(answer[field]))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(EnvelopeError):
        open_response(BINDING, r, dict(answer, **{field: b64e(bytes(raw))}))


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_response_cannot_be_opened_with_another_response_key(other: bytes) -> None:
    r = os.urandom(32)
    answer = seal_response(BINDING, r, values=["secret verdict"])
    if other != r:
        with pytest.raises(EnvelopeError):
            open_response(BINDING, other, answer)


def test_a_response_cannot_be_forged_without_r() -> None:
    """An answer sealed with any other key (a squatter on the socket) is refused."""
    r = os.urandom(32)
    forged = seal_response(BINDING, os.urandom(32), values=["ok"])
    with pytest.raises(EnvelopeError):
        open_response(BINDING, r, forged)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=8))
def test_values_round_trip(values: list[str]) -> None:
    sealed = seal(BINDING, K2, values)
    r, opened = worker_open(sealed.envelope)
    assert opened == values
    assert (
        open_response(BINDING, sealed.response_key, seal_response(BINDING, r, values=opened))
        == values
    )


def test_release_round_trip_and_binding() -> None:
    wrapped = seal_release(BINDING, K2)
    assert open_release(BINDING, wrapped, WORKER) == K2
    assert SUITE.decrypt(wrapped, WORKER, BINDING.release_info()) == K2
    with pytest.raises(EnvelopeError):
        open_release(BINDING, wrapped, OTHER)
    with pytest.raises(InvalidTag):
        SUITE.decrypt(wrapped, WORKER, BINDING.info())
    with pytest.raises(EnvelopeError):
        open_release(BINDING, wrapped[:-1] + bytes([wrapped[-1] ^ 1]), WORKER)


def test_an_envelope_is_not_a_release() -> None:
    """Domain separation: a layer-1 blob never opens as a released key and vice versa."""
    sealed = seal(BINDING, K2, VALUES)
    with pytest.raises(EnvelopeError):
        open_release(BINDING, b64d(sealed.envelope["sealed"]), WORKER)
    with pytest.raises(EnvelopeError):
        worker_open(dict(sealed.envelope, sealed=b64e(seal_release(BINDING, K2))))


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {"v": 1, "binding": {}},
        {"v": 2, "binding": BINDING.to_json(), "sealed": "AAAA"},
        {"v": True, "binding": BINDING.to_json(), "sealed": "AAAA"},
        {"v": 1, "binding": BINDING.to_json(), "sealed": "AA=="},
        {"v": 1, "binding": BINDING.to_json(), "sealed": "AAAA", "extra": 1},
        {"v": 1, "binding": dict(BINDING.to_json(), extra=1), "sealed": "AAAA"},
        {"v": 1, "binding": dict(BINDING.to_json(), expires_at="1"), "sealed": "AAAA"},
        {"v": 1, "binding": dict(BINDING.to_json(), expires_at=True), "sealed": "AAAA"},
        {"v": 1, "binding": dict(BINDING.to_json(), tenant=""), "sealed": "AAAA"},
        {"v": 1, "binding": dict(BINDING.to_json(), tenant=5), "sealed": "AAAA"},
        {"v": 1, "binding": dict(BINDING.to_json(), tenant="\ud800"), "sealed": "AAAA"},
        {"v": 1, "binding": dict(BINDING.to_json(), worker_key="AAAA"), "sealed": "AAAA"},
        {"v": 1, "binding": dict(BINDING.to_json(), job="j" * 513), "sealed": "AAAA"},
    ],
    ids=[
        "none",
        "list",
        "missing",
        "version2",
        "version-bool",
        "padded-b64",
        "extra-field",
        "binding-extra",
        "expires-str",
        "expires-bool",
        "empty-tenant",
        "int-tenant",
        "surrogate",
        "short-key",
        "long-job",
    ],
)
def test_malformed_envelopes_are_refused(body: object) -> None:
    with pytest.raises(EnvelopeError):
        parse_envelope(body)


def test_short_layer1_plaintext_is_refused() -> None:
    blob = SUITE.encrypt(b"\0" * 40, WORKER.public_key(), BINDING.info())
    env = {"v": 1, "binding": BINDING.to_json(), "sealed": b64e(blob)}
    with pytest.raises(EnvelopeError, match="too short"):
        worker_open(env)


@pytest.mark.parametrize(
    "plain",
    [b"not json", b'{"values":"x"}', b'{"values":[1]}', b'{"values":[],"x":1}', b"[]"],
    ids=["not-json", "str", "int-item", "extra", "list"],
)
def test_malformed_layer2_is_refused(plain: bytes) -> None:
    n2 = os.urandom(12)
    inner = Inner(os.urandom(32), n2, AESGCM(K2).encrypt(n2, plain, BINDING.info()))
    with pytest.raises(EnvelopeError):
        open_inner(BINDING, inner, K2)


@pytest.mark.parametrize(
    "response",
    [
        None,
        {"v": 1, "nonce": "AAAA"},
        {"v": 2, "nonce": b64e(bytes(12)), "ct": "AAAA"},
        {"v": 1, "nonce": b64e(bytes(11)), "ct": "AAAA"},
        {"v": 1, "nonce": "A=", "ct": "AAAA"},
    ],
    ids=["none", "missing", "version", "short-nonce", "bad-b64"],
)
def test_malformed_responses_are_refused(response: object) -> None:
    with pytest.raises(EnvelopeError):
        open_response(BINDING, K2, response)


def test_errors_never_carry_values_or_keys() -> None:
    sealed = seal(BINDING, K2, ["4111111111111111"])
    with pytest.raises(EnvelopeError) as e:
        worker_open(sealed.envelope, k2=bytes(32))
    text = str(e.value) + repr(e.value)
    assert "4111" not in text
    assert K2.hex() not in text
    assert b64e(K2) not in text
    assert "4111" not in repr(open_outer(parse_envelope(sealed.envelope), WORKER))


@pytest.mark.parametrize("size", [0, 16, 31, 33], ids=lambda n: f"k{n}")
def test_keys_of_the_wrong_size_are_refused(size: int) -> None:
    with pytest.raises(EnvelopeError):
        seal(BINDING, bytes(size), VALUES)
    with pytest.raises(EnvelopeError):
        seal_release(BINDING, bytes(size))
    with pytest.raises(EnvelopeError):
        seal_response(BINDING, bytes(size), values=[])
