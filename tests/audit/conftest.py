"""Fixtures for the audit tests."""

from __future__ import annotations

import pytest

from audit import Ed25519CheckpointSigner


@pytest.fixture
def signer() -> Ed25519CheckpointSigner:
    """A fresh in-memory checkpoint signer."""
    return Ed25519CheckpointSigner.generate()
