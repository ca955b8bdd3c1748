"""Session administration: the admin API (API keys with roles) and its audited acts.

:func:`~proxy.adminapi.app.add_admin_api` registers the routes on the admin
listener's app; :class:`~proxy.adminapi.config.AdminApiConfig` is the
``admin.api:`` section; :class:`~proxy.adminapi.acts.SessionAdmin` is the
audited core that ``tokengate sessions`` uses too.
"""

from __future__ import annotations

from proxy.adminapi.acts import Actor, SessionAdmin
from proxy.adminapi.app import OPERATIONS, add_admin_api
from proxy.adminapi.config import AdminApiConfig, AdminKeyConfig
from proxy.adminapi.keys import Role, key_digest, new_api_key

__all__ = [
    "OPERATIONS",
    "Actor",
    "AdminApiConfig",
    "AdminKeyConfig",
    "Role",
    "SessionAdmin",
    "add_admin_api",
    "key_digest",
    "new_api_key",
]
