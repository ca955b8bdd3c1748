"""The ``tokenization:`` section of gateway.yaml: what field rules need besides the vault.

The vault itself is configured in ``vault:`` (:class:`vault.config.VaultConfig`);
field classes and rules live in the policy files.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from policy.types import StrictModel

DEFAULT_RATE_LIMITS = "sqlite:ratelimits/ratelimits.db"


class TokenizationConfig(StrictModel):
    """Detokenize rate-limit counting and the index version of untagged token formats."""

    rate_limits: str = Field(
        DEFAULT_RATE_LIMITS,
        description="where detokenize rate-limit windows are counted: sqlite:<path> (under "
        "the data dir; every worker of one host), redis[s]://... (every replica), "
        "memory: (one worker only)",
    )
    rate_limit_timeout: float = Field(
        0.5, gt=0, le=30, description="seconds a rate-limit check may take before failing closed"
    )
    untagged_index_version: int = Field(
        1,
        ge=1,
        le=32,
        description="index key version of uuid and numeric/pan/ssn tokens, which cannot name "
        "it; changing it orphans tokens made under the old one",
    )

    @field_validator("rate_limits")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not v.startswith(("sqlite:", "redis://", "rediss://", "memory:")):
            raise ValueError("rate_limits must be sqlite:<path>, redis[s]://... or memory:")
        return v
