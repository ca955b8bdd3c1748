"""Smoke test of bench/proof.py: the timed calls run and do what they name."""

from __future__ import annotations

from bench import proof
from proxy.proof.message_signature import SignatureHeaders


def test_cases_sign_and_measure_reports_each() -> None:
    calls = proof.cases()
    assert len(calls["ed25519-sign"]()) == 64  # type: ignore[arg-type]
    signed = calls["sign-headers"]()
    assert isinstance(signed, SignatureHeaders)
    assert signed.signature_input.startswith('tokengate=("@method" "@authority" "@path" "@query"')
    assert signed.signature_input.endswith(';tag="tokengate-stream"')
    results = proof.measure(number=20, repeat=1)
    assert set(results) == {"ed25519-sign", "sign-headers"}
    assert all(us > 0 for us in results.values())
