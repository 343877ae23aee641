"""``web.trusted_proxies``: behind a balancer, ``authcore serve`` takes the client's address from
``X-Forwarded-For`` when (and only when) the request comes from a configured proxy, so the
per-address failed-login counter counts clients, not the balancer. Real ``authcore serve``."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from authcore import AuthManager, ConfigError
from authcore.testing.service_process import start_service

CONFIG = """\
tokens: {{secret: trusted-proxies-test-only-secret-0123456789}}
providers: [{{name: dummy}}]
web:
  throttle: {{enabled: true, max_per_login: 100, max_per_address: 2, window: 10m}}
{extra}"""


def _failures(url: str, address: str, count: int) -> list[int]:
    statuses = []
    for attempt in range(count):
        body = {"plugin": "dummy", "login": f"user-{address}-{attempt}", "password": ""}
        answer = httpx.post(url + "/auth/login", json=body, headers={"X-Forwarded-For": address})
        statuses.append(answer.status_code)
    return statuses


@pytest.mark.parametrize("trusted", [True, False])
def test_failures_count_per_forwarded_client_only_from_trusted_proxies(tmp_path: Path, trusted: bool) -> None:
    config = tmp_path / "authcore.yml"
    extra = "  trusted_proxies: [127.0.0.1]\n" if trusted else ""
    config.write_text(CONFIG.format(extra=extra), encoding="utf-8")
    service = start_service(config)
    try:
        first = _failures(service.url, "198.51.100.7", 3)
        second = _failures(service.url, "203.0.113.9", 1)
    finally:
        service.stop()
    assert first == [401, 401, 429]  # the third failure from one client is refused
    # From a trusted proxy another client is another address; otherwise everybody is the proxy.
    assert second == ([401] if trusted else [429])


@pytest.mark.parametrize("entry", ["", "localhost", "10.0.0.0/33", "1.2.3.4.5", "::g", "\x00"])
def test_trusted_proxies_are_addresses_or_networks(entry: str) -> None:
    config = {"providers": [{"name": "dummy"}], "web": {"trusted_proxies": [entry]}}
    with pytest.raises(ConfigError, match="trusted_proxies"):
        AuthManager.from_config(config)
