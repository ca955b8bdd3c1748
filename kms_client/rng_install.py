"""Installing the HSM-augmented DRBG into :mod:`kms_client.rng` at unseal.

When the root backend has an RNG of its own (an HSM's ``C_GenerateRandom``,
AWS KMS ``GenerateRandom``), unseal builds an HKDF DRBG
(:mod:`kms_client.drbg`) seeded from OS entropy and root output, keeps it
reseeded from the root every ``reseed_interval`` seconds, and makes it the
process RNG. The DRBG refuses output once root entropy is three intervals old,
so an unreachable HSM fails closed instead of quietly falling back to OS-only
randomness. Sealing uninstalls it. Roots without an RNG leave ``os.urandom``.
"""

from __future__ import annotations

from kms_client import rng
from kms_client.counting_root import CountingRoot
from kms_client.drbg import DrbgReseeder, HkdfDrbg, ReseedPolicy

_PROBE_BYTES = 48


class RngInstaller:
    """Owns the DRBG and its reseeder between unseal and seal."""

    def __init__(self, *, reseed_interval: float) -> None:
        self._interval = reseed_interval
        self._drbg: HkdfDrbg | None = None
        self._reseeder: DrbgReseeder | None = None

    async def start(self, root: CountingRoot) -> str:
        """Install a root-augmented DRBG if the root has an RNG; return the RNG's name."""
        await self.stop()
        probe = await root.random(_PROBE_BYTES)
        if probe is None:
            return rng.source_name()
        policy = ReseedPolicy(augment_max_age=self._interval * 3)
        drbg = HkdfDrbg(policy=policy, name=f"hkdf-drbg+{root.description.split(':', 1)[0]}")
        drbg.augment(probe)
        reseeder = DrbgReseeder(drbg, root.random, interval=self._interval)
        await reseeder.start()
        self._drbg, self._reseeder = drbg, reseeder
        rng.install(drbg)
        return drbg.name

    async def stop(self) -> None:
        """Stop reseeding and go back to ``os.urandom``."""
        reseeder, drbg = self._reseeder, self._drbg
        self._reseeder, self._drbg = None, None
        if reseeder is not None:
            await reseeder.stop()
        if drbg is not None:
            rng.uninstall(drbg)
