"""Body codecs for field rules: media types, content codings, JSON and form bodies.

Pure code (no IO, no HTTP framework). Every codec keeps a body byte-identical
when nothing in it changed, and raises :mod:`policy.bodies.errors` exceptions
that the transformer turns into client errors naming the rule.
"""
