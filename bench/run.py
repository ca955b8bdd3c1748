"""Gateway benchmark entry point: ``.venv/bin/python bench/run.py [--duration 10] [--quick]``.

Runs the demo backend directly, nginx, the reference aiohttp proxy, tokengate
(1 and 2 workers, access log on and off) and mitmdump under the same wrk load,
prints rps, p50, p99 and ratios, and writes bench/results/gateway-<time>.json.
See bench/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, Python puts bench/ on the path, not the repo that holds the package.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.gateway import main

    sys.exit(main())
