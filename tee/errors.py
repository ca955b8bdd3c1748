"""Errors of the tee package: one base and the refusal of a piece of evidence.

A refusal names the check that failed (``chain``, ``signature``,
``window``, ``nonce``, ``report_data``, ``debug``, ``tcb``, ``measurement``,
``format``, ``root``, ...) so an operator can act on it; it never carries
key material or the evidence itself.
"""

from __future__ import annotations

from tokengate.errors import GatewayError


class TeeError(GatewayError):
    """Base of TEE errors: the TEE pool cannot serve (503)."""

    status = 503
    code = "tee_unavailable"


class EvidenceRefused(TeeError):
    """The evidence did not verify; ``check`` names the check that failed."""

    status = 403
    code = "attestation_refused"
    public = True

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"attestation: {check}: {detail}")
        self.check = check
        self.detail = detail


# --- binding, double envelope, worker RPC (tee.binding, tee.envelope, tee.worker) ---


class BindingError(TeeError):
    """A nonce or public key of the wrong shape was offered for binding."""

    status = 400
    code = "bad_binding"
    public = True


class EnvelopeError(TeeError):
    """An envelope, response or released key that cannot be opened or is malformed.

    Opaque on purpose: it never says which layer, field or key failed, so a
    prober learns nothing from it (the message says only where it happened).
    """

    status = 400
    code = "bad_envelope"
    public = True


class WorkerError(TeeError):
    """A worker could not be reached or answered outside the protocol (503)."""

    code = "worker_unavailable"


class JobRefused(TeeError):
    """A worker refused a job or the job failed; ``code`` is the worker's stable error code."""

    status = 502
    code = "job_failed"
    public = True


class BundleError(TeeError):
    """A job bundle that cannot be measured or loaded; the worker does not start."""

    code = "bad_bundle"


class WorkerRefusal(TeeError):
    """The worker refuses a request before opening anything (400/403/410, stable ``code``)."""

    status = 400
    code = "bad_request"
    public = True


class KeyBrokerRefused(TeeError):
    """The KMS key broker refused the worker (attest, session, release); ``code`` is the KMS's."""

    status = 403
    code = "kms_refused"
    public = True


class KeyBrokerUnavailable(TeeError):
    """The KMS key broker could not be reached or answered outside the protocol (503)."""

    code = "kms_unavailable"


# --- TEE registry and its database (tee.registry, tee.db) ---


class RegistryError(TeeError):
    """A registry request that cannot be honoured (bad entry 400, unknown 404, exists 409)."""

    status = 400
    code = "bad_entry"
    public = True


class StoreUnavailable(TeeError):
    """The registry's (or the broker's) database failed or timed out (503)."""

    code = "store_unavailable"
