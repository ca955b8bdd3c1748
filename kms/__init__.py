"""The self-hosted KMS service (key broker) that releases keys to attested TEEs.

Empty until the TEE capability lands; gateways reach it as the `remote:` root.
"""
