"""The demo's TEE job bundle: checks on plaintext that the backend never sees.

A bundle is plain Python with no tokengate imports: it defines ``JOBS``, job
name -> ``def job(values: list[str]) -> list[str]`` (one verdict per value,
same order). ``tokengate tee worker --bundle examples/tee_jobs`` measures these
files and serves the jobs; each job module documents its verdict's exact shape.
"""

from __future__ import annotations

from collections.abc import Callable

from .cards import card_check
from .ssn import ssn_check

JOBS: dict[str, Callable[[list[str]], list[str]]] = {
    "card_check": card_check,
    "ssn_check": ssn_check,
}
