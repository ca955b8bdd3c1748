"""The TEE worker runtime (``tokengate tee worker``), one concern per module.

- :mod:`tee.worker.keys`: the in-memory X25519 key pairs, their generation and grace.
- :mod:`tee.worker.attester`: evidence binding a key and a nonce (simulated TEE).
- :mod:`tee.worker.kbs`: the worker's side of the KMS key broker (attest, release).
- :mod:`tee.worker.service`: info, attest and job handling, without HTTP.
- :mod:`tee.worker.app`: the aiohttp application (JSON errors, body limit).
- :mod:`tee.worker.server`: listening on loopback TCP or a unix socket until SIGTERM.

The protocol is docs/tee-protocol.md. Values are never logged.
"""
