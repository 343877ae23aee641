"""Framework-independent pieces: bearer parsing, error bodies, throttle, signed state, settings; import costs."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from authcore import ConfigError, Forbidden, InvalidCredentials, InvalidToken, NotSupported, UnknownProvider
from authcore.web.common import (
    StateSigner,
    Throttle,
    Throttled,
    WebSettings,
    bearer_token,
    csrf_matches,
    error_response,
    is_loopback,
    safe_next,
)


@pytest.mark.parametrize("header", [None, ""])
def test_no_header_is_no_token(header):
    assert bearer_token(header) is None


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_scheme_is_case_insensitive(scheme):
    assert bearer_token(f"{scheme} abc.def-ghi_jkl~") == "abc.def-ghi_jkl~"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer  abc",
        "Bearer abc def",
        "Bearer\tabc",
        "Basic abc",
        "abc",
        "Bearer ab\u00e9",
        "Bearer " + "a" * 17000,
        "Bearer abc\n",
    ],
)
def test_malformed_bearer_headers_raise_invalid_token(header):
    with pytest.raises(InvalidToken):
        bearer_token(header)


def test_error_bodies_never_tell_whether_a_login_exists():
    a = error_response(InvalidCredentials("no such user alice"))
    b = error_response(InvalidCredentials("wrong password for alice"))
    assert a == b
    assert a[0] == 401 and "alice" not in json.dumps(a[1]) and a[2]["WWW-Authenticate"].startswith("Bearer")


def test_error_mapping():
    assert error_response(Forbidden())[0] == 403
    assert error_response(NotSupported("p", "create_user"))[0] == 501
    assert error_response(UnknownProvider("no provider 'x' (enabled: a)"))[:2] == (
        400,
        {"detail": "unknown provider", "code": "unknown_provider"},
    )
    status, body, _ = error_response(ConfigError("/etc/secret/path line 3"))
    assert status == 500 and "/etc" not in body["detail"]
    assert error_response(Throttled(3.2))[2]["Retry-After"] == "4"


def test_throttle_counts_per_login_and_address_and_is_bounded():
    now = [1000.0]
    throttle = Throttle(max_per_login=2, max_per_address=3, window=10, max_entries=50, clock=lambda: now[0])
    throttle.failure("alice", "10.0.0.1")
    throttle.failure("alice", "10.0.0.2")
    with pytest.raises(Throttled):
        throttle.check("alice", "10.0.0.3")
    throttle.check("bob", "10.0.0.1")
    throttle.failure("bob", "10.0.0.1")
    throttle.failure("carol", "10.0.0.1")
    with pytest.raises(Throttled):
        throttle.check("dave", "10.0.0.1")  # the address is over its limit
    now[0] += 11
    throttle.check("alice", "10.0.0.1")  # the window is over
    for i in range(1000):
        throttle.failure(f"user{i}", f"192.0.2.{i % 200}")
    assert len(throttle) <= 50
    throttle.success("user999")
    with pytest.raises(ConfigError):
        Throttle(max_entries=0)


def test_state_signer_rejects_tampering_and_expiry():
    signer = StateSigner()
    value = signer.dumps({"s": "state"}, ttl=60)
    assert signer.loads(value) == {"s": "state"}
    with pytest.raises(InvalidToken):
        StateSigner().loads(value)  # another key
    with pytest.raises(InvalidToken):
        signer.loads(value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    for bad in (None, "", "a.b.c", "x" * 9000):
        with pytest.raises(InvalidToken):
            signer.loads(bad)
    expired = signer.dumps({"s": 1}, ttl=-5)
    with pytest.raises(InvalidToken):
        signer.loads(expired)
    with pytest.raises(ConfigError):
        StateSigner(b"short")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.1:8000", True),
        ("localhost", True),
        ("[::1]:80", True),
        ("::1", True),
        ("app.localhost", True),
        ("0.0.0.0", False),
        ("example.org", False),
        ("10.0.0.1:80", False),
        (None, False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/", "/"),
        ("/a?b=1", "/a?b=1"),
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
        ("/\\evil", "/"),
        (None, "/"),
        ("/a\nb", "/"),
        ("/\u20ac?q=\u00fc", "/%E2%82%AC?q=%C3%BC"),  # non-ASCII: percent-encoded, a Location is ASCII
        ("/a%20b", "/a%20b"),  # escapes stay as sent
        ("/a\x7fb", "/a%7Fb"),
        ("/" + "\u20ac" * 700, "/"),  # too long once encoded
    ],
)
def test_safe_next(value, expected):
    assert safe_next(value) == expected


def test_settings_validation_and_csrf():
    for bad in ({"prefix": "api"}, {"prefix": "/api/"}, {"query_token": "a b"}):
        with pytest.raises(ConfigError):
            WebSettings(**bad)  # type: ignore[arg-type]
    assert WebSettings(prefix="/ispyb/api/v1").path("/auth/login") == "/ispyb/api/v1/auth/login"
    assert csrf_matches("abc", "abc") and not csrf_matches("abc", "abd") and not csrf_matches(None, "x")
    assert not csrf_matches("abc", None)


def test_importing_authcore_web_and_cli_help_import_no_framework():
    code = (
        "import sys, authcore, authcore.web, authcore.web.common, authcore.web.users, authcore.cli\n"
        "try:\n    authcore.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "try:\n    authcore.cli.main(['serve', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = {'fastapi', 'starlette', 'flask', 'werkzeug', 'uvicorn', 'httpx'}\n"
        "print(sorted(heavy & {m.partition('.')[0] for m in sys.modules}))\n"
    )
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert time.perf_counter() - started < 30


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        ("BadRequest", 400, "bad_request"),
        ("NotAuthenticated", 401, "not_authenticated"),
        ("PayloadTooLarge", 413, "payload_too_large"),
        ("UnsupportedMediaType", 415, "unsupported_media_type"),
        ("UserChangeRefused", 409, "change_refused"),
    ],
)
def test_request_errors_live_in_the_core_so_providers_can_raise_them(error, status, code):
    import authcore.errors
    import authcore.web.common

    cls = getattr(authcore.errors, error)
    assert getattr(authcore.web.common, error, cls) is cls  # the web layer re-exports, never redefines
    answer, body, _headers = error_response(cls())
    assert (answer, body["code"]) == (status, code)


def test_throttled_and_unknown_plugin_are_core_errors_too():
    from authcore.errors import Throttled, UnknownPlugin

    assert error_response(Throttled(2.5))[0::2] == (429, {"Retry-After": "3"})
    assert error_response(UnknownPlugin(["b", "a"]))[1]["detail"] == "'plugin' must name an enabled provider: a, b"
