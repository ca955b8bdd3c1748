"""A small existing web app used to demonstrate tokengate; it imports nothing of tokengate.

Run it with ``python -m demo_backend --data-dir DIR``; embed it with
:func:`create_app`. The fixed API is documented in README.md beside this file.
"""

from demo_backend.app import create_app

__all__ = ["create_app"]
