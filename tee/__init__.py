"""Attestation verifiers, the TEE worker runtime, registry and pool.

Empty until the TEE capability lands (see DESIGN.md, "TEE pool").
"""
