"""Session administration: the admin API (API keys with roles) and its audited acts.

:func:`~proxy.adminapi.app.add_admin_api` registers the routes on the admin
listener's app; :class:`~proxy.adminapi.config.AdminApiConfig` is the
``admin.api:`` section; :class:`~proxy.adminapi.acts.SessionAdmin` is the
audited core that ``tokengate sessions`` uses too. Import from the modules:
this package imports nothing eagerly, because gateway.yaml's model imports
the config module while the app module imports the gateway's state.
"""
