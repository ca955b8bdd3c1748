"""Tokenizing plaintext already stored in an existing database column, in place.

:mod:`proxy.migrate.source` is the boundary (a :class:`~proxy.migrate.source.Source`
per engine: :mod:`~proxy.migrate.sqlite_source`, :mod:`~proxy.migrate.postgres_source`,
chosen by :func:`~proxy.migrate.opening.open_source`); :mod:`proxy.migrate.runner`
is the engine-neutral loop. ``tokengate migrate`` (:mod:`proxy.cli.migrate_cmd`)
opens the gateway's keyring, vault and audit log and runs it. Nothing here
imports click.
"""
