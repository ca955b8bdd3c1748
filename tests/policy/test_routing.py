"""Route precedence and matching, allow and deny side by side."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy.model import Route
from policy.routing import Match, NoRoute, Router


def route(name: str, priority: int = 0, **match: object) -> Route:
    return Route.model_validate(
        {"name": name, "match": match, "priority": priority, "allow_unauthenticated": True}
    )


def matched(router: Router, path: str, method: str = "GET", host: str = "app.test") -> str | None:
    found = router.match(host, method, path)
    return found.route.name if isinstance(found, Match) else None


TABLE = [
    route("exact", path="/api/users/me"),
    route("template", path="/api/users/{id}"),
    route("deep-template", path="/api/users/{id}/cards/{card}"),
    route("api-prefix", prefix="/api"),
    route("catch-all", prefix="/"),
    route("regex", regex=r"/reports/\d{4}"),
    route("host-specific", host="admin.test", prefix="/api"),
    route("wildcard-host", host="*.tenant.test", prefix="/"),
    route("post-only", methods=["POST"], path="/api/login"),
]


@pytest.mark.parametrize(
    ("path", "host", "method", "expected"),
    [
        ("/api/users/me", "app.test", "GET", "exact"),
        ("/api/users/42", "app.test", "GET", "template"),
        ("/api/users/42/cards/7", "app.test", "GET", "deep-template"),
        ("/api/users/42/other", "app.test", "GET", "api-prefix"),
        ("/api/users/", "app.test", "GET", "api-prefix"),  # a parameter never matches empty
        ("/api", "app.test", "GET", "api-prefix"),
        ("/apis", "app.test", "GET", "catch-all"),  # prefixes stop at segment boundaries
        ("/", "app.test", "GET", "catch-all"),
        ("/reports/2024", "app.test", "GET", "catch-all"),  # prefix beats regex by kind
        ("/api/users/42", "admin.test", "GET", "host-specific"),  # host beats kind
        ("/x", "a.tenant.test", "GET", "wildcard-host"),
        ("/x", "tenant.test", "GET", "catch-all"),  # wildcard needs a label
        ("/api/login", "app.test", "POST", "post-only"),
        ("/api/login", "app.test", "GET", "api-prefix"),
    ],
)
def test_precedence(path: str, host: str, method: str, expected: str) -> None:
    assert matched(Router.compile(TABLE), path, method, host) == expected


def test_regex_used_when_nothing_better() -> None:
    router = Router.compile([route("regex", regex=r"/reports/\d{4}"), route("x", path="/x")])
    assert matched(router, "/reports/2024") == "regex"
    assert matched(router, "/reports/20245") is None  # fullmatch, not search


def test_priority_overrides_specificity() -> None:
    router = Router.compile([route("exact", path="/a/b"), route("boss", priority=10, prefix="/")])
    assert matched(router, "/a/b") == "boss"
    router = Router.compile(
        [route("exact", path="/a/b"), route("boss", priority=10, regex="/a/.*")]
    )
    assert matched(router, "/a/b") == "boss"


def test_default_deny_and_method_not_allowed() -> None:
    router = Router.compile([route("login", methods=["POST"], path="/login")])
    assert router.match("h", "GET", "/nothing") == NoRoute()
    assert router.match("h", "GET", "/login") == NoRoute(frozenset({"POST"}))


def test_template_params_captured() -> None:
    router = Router.compile([route("t", path="/u/{uid}/c/{cid}")])
    found = router.match("h", "GET", "/u/7/c/abc")
    assert isinstance(found, Match)
    assert found.params == {"uid": "7", "cid": "abc"}


def test_more_literal_template_wins() -> None:
    router = Router.compile([route("loose", path="/{a}/{b}"), route("tight", path="/users/{b}")])
    assert matched(router, "/users/1") == "tight"
    assert matched(router, "/groups/1") == "loose"


def test_identical_matches_refused() -> None:
    with pytest.raises(ValueError, match="match the same requests"):
        Router.compile([route("a", path="/x/{id}"), route("b", path="/x/{other}")])
    Router.compile([route("a", path="/x/{id}"), route("b", priority=1, path="/x/{other}")])


def test_host_is_case_insensitive() -> None:
    router = Router.compile([route("h", host="App.Test", prefix="/")])
    assert matched(router, "/", host="APP.test") == "h"
    assert matched(router, "/", host="other.test") is None


@given(st.permutations(TABLE))
def test_decisions_do_not_depend_on_declaration_order(routes: list[Route]) -> None:
    base = Router.compile(TABLE)
    shuffled = Router.compile(routes)
    for path in ("/api/users/me", "/api/users/1", "/api", "/", "/reports/2024", "/api/login"):
        for method in ("GET", "POST"):
            assert matched(base, path, method) == matched(shuffled, path, method)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["/api/users/me", "/api/users/1", "/api", "/", "/reports/2024", "/x"]),
            st.sampled_from(["GET", "POST", "DELETE"]),
            st.sampled_from(["app.test", "admin.test", "a.tenant.test", "APP.test"]),
        ),
        max_size=40,
    )
)
def test_memo_answers_as_match_does(asks: list[tuple[str, str, str]]) -> None:
    router = Router.compile(TABLE)
    for path, method, host in asks + asks:  # each asked twice: the second one from the memo
        assert router.match_memo(host, method, path) == router.match(host, method, path)


def test_memo_is_bounded_and_drops_the_oldest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("policy.routing.MEMO_SIZE", 3)
    router = Router.compile(TABLE)
    for i in range(5):
        router.match_memo("app.test", "GET", f"/p{i}")
    assert list(router._memo) == [("app.test", "GET", f"/p{i}") for i in (2, 3, 4)]
