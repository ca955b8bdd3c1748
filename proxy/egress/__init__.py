"""The egress relay: the backend's calls to allow-listed third parties, detokenized on the way out.

The backend holds only tokens; when it must send a real value to a payment
API or a verification service, it calls through this relay (HTTPS_PROXY).
The relay intercepts TLS for allow-listed hosts only, applies the egress
routes' field rules (detokenize in requests, tokenize in responses) with the
same policy engine and plugins as the gateway, and audits every release.

mitmproxy is an optional extra (``tokengate[egress]``): only
:mod:`proxy.egress.addon`, :mod:`~proxy.egress.flows`, :mod:`~proxy.egress.tls`,
:mod:`~proxy.egress.relay` and :mod:`~proxy.egress.server` import it; every
other module here, and the rest of tokengate, must not
(``tests/proxy/egress/test_embedding.py`` checks).
"""
