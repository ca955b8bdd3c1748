"""``python -m proxy.cli``: the ``tokengate`` command without its console script."""

from proxy.cli import main

main()
