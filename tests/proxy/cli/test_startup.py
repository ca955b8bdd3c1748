"""start_errors: a server command that cannot start exits 2 with one readable line, no traceback."""

from __future__ import annotations

import errno

import pytest

from policy.errors import PolicyError
from proxy.cli.startup import start_errors
from tokengate.errors import ConfigError


def _exit_of(error: BaseException, capsys: pytest.CaptureFixture[str], **kw: str) -> str:
    with pytest.raises(SystemExit) as stopped, start_errors(**kw):
        raise error
    assert stopped.value.code == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert "Traceback" not in out.err
    return out.err


def test_a_bad_config_lists_every_problem(capsys: pytest.CaptureFixture[str]) -> None:
    err = _exit_of(PolicyError(["a.yaml: routes[0]: bad", "b.yaml: x: worse"]), capsys)
    assert err.splitlines() == [
        "tokengate: invalid configuration:",
        "  a.yaml: routes[0]: bad",
        "  b.yaml: x: worse",
    ]


def test_a_failed_start_names_what_could_not_start(capsys: pytest.CaptureFixture[str]) -> None:
    err = _exit_of(ConfigError("keys.root: no such file"), capsys, cannot="cannot start the KMS")
    assert err == "tokengate: cannot start the KMS: keys.root: no such file\n"


def test_an_os_error_shows_its_reason_only(capsys: pytest.CaptureFixture[str]) -> None:
    err = _exit_of(OSError(errno.EADDRINUSE, "Address already in use", "/secret/path"), capsys)
    assert err == "tokengate: cannot start: Address already in use\n"


def test_nothing_raised_passes_through() -> None:
    with start_errors():
        pass
