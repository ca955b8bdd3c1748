"""Which purposes are due for rotation: pure decisions, no IO.

A purpose is due on ``schedule`` when its primary is at least ``max_age`` old,
and on ``usage`` when its primary has made at least
``rotate_after_encryptions`` encryptions (counted across replicas in the
store). ``prf`` purposes never have either setting (see config). The
decision is re-checked against the newest keyring inside the commit, so two
replicas deciding at once rotate once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from kms_client.config import PurposeSettings
from kms_client.keyring import Keyring


@dataclass(frozen=True)
class Due:
    """One rotation to make: purpose, the primary it replaces, and why."""

    purpose: str
    primary: int
    trigger: str


def due_rotations(
    keyring: Keyring,
    settings: Mapping[str, PurposeSettings],
    usage: Mapping[tuple[str, int], int],
    *,
    now: datetime,
) -> list[Due]:
    """Every rotation the settings ask for right now."""
    out = []
    for name, s in settings.items():
        ring = keyring.purposes.get(name)
        if ring is None:
            continue
        if is_due(keyring, s, usage, now=now, primary=ring.primary) is not None:
            trigger = "schedule" if _too_old(keyring, s, now) else "usage"
            out.append(Due(name, ring.primary, trigger))
    return out


def is_due(
    keyring: Keyring,
    s: PurposeSettings,
    usage: Mapping[tuple[str, int], int],
    *,
    now: datetime,
    primary: int,
) -> str | None:
    """The trigger if purpose ``s`` still needs rotating away from ``primary``, else None."""
    ring = keyring.purposes.get(s.name)
    if ring is None or ring.primary != primary:
        return None  # already rotated (by another replica)
    if _too_old(keyring, s, now):
        return "schedule"
    limit = s.rotate_after_encryptions
    if limit is not None and usage.get((s.name, primary), 0) >= limit:
        return "usage"
    return None


def _too_old(keyring: Keyring, s: PurposeSettings, now: datetime) -> bool:
    ring = keyring.purposes.get(s.name)
    if ring is None or s.max_age is None:
        return False
    return now - ring.primary_key.created_at >= s.max_age
