"""Checkpoints: signed message, records, tamper and key failures, signer failures."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import Ed25519CheckpointSigner
from audit.checkpoint import (
    CHECKPOINT_TYPE,
    Checkpoint,
    checkpoint_from_entry,
    parse_checkpoint_record,
    sign_checkpoint,
)
from audit.entry import GENESIS, build_entry
from audit.errors import AuditFormatError, AuditUnavailableError

from .test_keys import RFC_KID, rfc_key

TS = "2025-01-02T03:04:05.000006Z"
COVERED = build_entry(writer="w", seq=4, ts=TS, event="gateway.stop", fields={}, prev=GENESIS)


def signed(final: bool = False) -> Checkpoint:
    return sign_checkpoint(
        Ed25519CheckpointSigner(rfc_key()), writer="w", covered=COVERED, ts=TS, final=final
    )


def test_message_known_answer() -> None:
    cp = signed()
    assert cp.message() == (
        b'{"count":5,"final":false,"hash":"'
        + COVERED.hash.encode()
        + b'","kid":"'
        + RFC_KID.encode()
        + b'","seq":4,"ts":"'
        + TS.encode()
        + b'","type":"'
        + CHECKPOINT_TYPE.encode()
        + b'","writer":"w"}'
    )
    assert len(cp.sig) == 86


def test_signature_verifies_with_the_signers_key_only() -> None:
    cp = signed()
    assert cp.verify({RFC_KID: rfc_key().public_key()}) is None
    assert cp.verify({}) == "signed by an unknown key"
    assert (
        cp.verify({RFC_KID: Ed25519PrivateKey.generate().public_key()})
        == "signature does not verify"
    )


@pytest.mark.parametrize(
    "change",
    [
        {"writer": "x"},
        {"seq": 3},
        {"hash": "0" * 64},
        {"count": 4},
        {"ts": "2025-01-02T03:04:05.000007Z"},
        {"final": True},
        {"sig": "A" * 86},
        {"sig": "not base64!"},
    ],
)
def test_any_change_breaks_the_signature(change: dict[str, object]) -> None:
    tampered = dataclasses.replace(signed(), **change)  # type: ignore[arg-type]
    assert tampered.verify({RFC_KID: rfc_key().public_key()}) == "signature does not verify"


def test_record_and_entry_forms_round_trip() -> None:
    cp = signed(final=True)
    assert parse_checkpoint_record(cp.record_line()) == cp
    entry = build_entry(
        writer="w",
        seq=5,
        ts=TS,
        event="audit.checkpoint",
        fields=cp.entry_fields(),
        prev=COVERED.hash,
    )
    assert checkpoint_from_entry(entry) == cp


@pytest.mark.parametrize(
    "mutate",
    [
        lambda line: line.replace(b",", b", ", 1),
        lambda line: line.replace(b'"final":true', b'"final":1'),
        lambda line: line.replace(CHECKPOINT_TYPE.encode(), b"other"),
        lambda line: line[:-3] + b',"x":1}\n',
        lambda line: b"{}\n",
        lambda line: b"\xff\n",
    ],
)
def test_malformed_records_are_refused(mutate: Callable[[bytes], bytes]) -> None:
    with pytest.raises(AuditFormatError):
        parse_checkpoint_record(mutate(signed(final=True).record_line()))


def test_checkpoint_entries_with_wrong_fields_are_refused() -> None:
    entry = build_entry(
        writer="w",
        seq=5,
        ts=TS,
        event="audit.checkpoint",
        fields={"covers_seq": 4},
        prev=COVERED.hash,
    )
    with pytest.raises(AuditFormatError):
        checkpoint_from_entry(entry)


class BrokenSigner:
    def __init__(self, result: object) -> None:
        self.result = result

    @property
    def kid(self) -> str:
        return RFC_KID

    def sign(self, message: bytes) -> bytes:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result  # type: ignore[return-value]

    def public_jwk(self) -> dict[str, str]:
        return {}


@pytest.mark.parametrize("result", [RuntimeError("hsm gone"), b"short", "x" * 64, b"\0" * 65])
def test_a_failing_signer_refuses(result: object) -> None:
    with pytest.raises(AuditUnavailableError, match="checkpoint signer"):
        sign_checkpoint(BrokenSigner(result), writer="w", covered=COVERED, ts=TS, final=False)
