"""What proving one forwarded request costs: ``.venv/bin/python -m bench.proof [--quick]``.

DESIGN.md makes the gateway sign every request it forwards (RFC 9421, Ed25519,
fresh ``created`` and ``nonce``), so no two signatures are alike and none can
be cached. This times, in process, with timeit (median of the repeats, in
microseconds per call):

- ``ed25519-sign``: the Ed25519 signature alone, over 512 bytes (about the
  size of the signature base of a pass-through GET with its identity token);
- ``sign-headers``: ``UpstreamSigner.sign_headers`` for that GET, what the
  forwarder calls: the base built from precomputed text, a fresh nonce, the
  signature, the two header values.

Set beside the reference proxy's CPU per request (``bench/run.py``, column
``cpu us/req``) this is the floor of what tokengate's proof adds to every
pass-through request. Writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from multidict import CIMultiDict

from kms_client.rng import random_bytes
from kms_client.signing import KeySigner
from proxy.proof.message_signature import UpstreamSigner

RESULTS = Path(__file__).resolve().parent / "results"
# An identity token of typical length (its content is irrelevant to the cost).
IDENTITY = "eyJ" + "x" * 420


def cases() -> dict[str, Callable[[], object]]:
    """The timed calls, each on a fresh key made at start (never a stored one)."""
    key = KeySigner.from_seed("upstream-signing", 1, random_bytes(32))
    signer = UpstreamSigner(signer=lambda: key, random_bytes=random_bytes)
    headers = CIMultiDict({"Host": "127.0.0.1:8000", "Tokengate-Identity": IDENTITY})

    def sign_headers() -> object:
        return signer.sign_headers(
            method="GET",
            authority="127.0.0.1:8000",
            target="/healthz",
            headers=headers,
            now=time.time(),
            streamed=True,
        )

    base = random_bytes(512)
    return {"ed25519-sign": lambda: key.sign(base), "sign-headers": sign_headers}


def measure(number: int, repeat: int) -> dict[str, float]:
    """Median microseconds per call of each case."""
    out = {}
    for name, call in cases().items():
        runs = timeit.repeat(call, number=number, repeat=repeat)
        out[name] = statistics.median(runs) / number * 1e6
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--quick", action="store_true", help="2,000 calls x 3 repeats")
    args = p.parse_args()
    number, repeat = (2_000, 3) if args.quick else (20_000, 7)
    results = measure(number, repeat)
    for name, us in results.items():
        print(f"{name:<14} {us:8.2f} us per call")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"proof-{stamp}.json"
    doc = {"benchmark": "proof", "number": number, "repeat": repeat, "us_per_call": results}
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"JSON: {path}")


if __name__ == "__main__":
    main()
