"""Errors of the policy package: configuration that cannot be loaded or used."""

from __future__ import annotations

from tokengate.errors import ConfigError


class PolicyError(ConfigError):
    """A policy or gateway file is invalid; the message names file, YAML path and problem.

    Example: ``policies/users.yaml: routes[2].match.path: unbalanced '{'``.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))
