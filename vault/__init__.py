"""The token vault: token formats, record encryption and storage backends.

- :mod:`vault.api`: what the rest of tokengate asks (the TokenVault Protocol);
- :mod:`vault.tokens`, :mod:`vault.formats`, :mod:`vault.codec`: token layouts;
- :mod:`vault.record`, :mod:`vault.crypto`: the record and its two layers of
  AES-256-GCM exactly as DESIGN.md "Tokens and the vault record" says;
- :mod:`vault.engine`: the Vault over a store and the keyring;
- :mod:`vault.store` and its backends (SQLite, Redis, PostgreSQL, S3, memory),
  chosen by URL in :mod:`vault.opening`;
- :mod:`vault.rewrap`: moving records to the primary tokenize key.

The vault knows nothing of HTTP, policies or plugins.
"""
