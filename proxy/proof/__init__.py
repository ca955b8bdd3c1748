"""The pure core of proving forwarded requests to the backend.

RFC 9530 content digests, RFC 9421 HTTP message signatures over the forwarded
request, and the ``Tokengate-Identity`` JWT they cover. No IO, no aiohttp.
"""
