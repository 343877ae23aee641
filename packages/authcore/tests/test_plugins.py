"""Provider discovery through real (synthetic) installed metadata: nothing is mocked."""

from __future__ import annotations

import sys

import pytest

from authcore import AuthManager, ConfigError, UnknownProvider
from authcore.plugins import installed_providers, load_class

PROVIDER_MODULE = """
from authcore import Identity, PasswordCredentials, Provider, hookimpl

class EchoProvider(Provider):
    type = "echo"
    def authenticate(self, credentials):
        return Identity(login=credentials.login)

@hookimpl
def authcore_register_providers(register):
    register(EchoProvider)
"""


def test_listing_reads_metadata_only(fake_dist):
    fake_dist("auth-echo", {"authcore.providers": {"echo": "echo_plugin"}}, {"echo_plugin": PROVIDER_MODULE})
    entries = {e.name: e for e in installed_providers()}
    assert entries["echo"].distribution == "auth-echo"
    assert entries["echo"].version == "1.0"
    assert "echo_plugin" not in sys.modules


def test_configured_provider_is_imported_and_used(fake_dist):
    fake_dist("auth-echo", {"authcore.providers": {"echo": "echo_plugin"}}, {"echo_plugin": PROVIDER_MODULE})
    with AuthManager.from_config({"providers": [{"name": "e", "type": "echo"}]}) as manager:
        assert "echo_plugin" in sys.modules
        assert manager.login("e", login="u", password="p").login == "u"


def test_two_distributions_claiming_one_type(fake_dist):
    fake_dist("auth-echo", {"authcore.providers": {"echo": "echo_plugin"}})
    fake_dist("other-echo", {"authcore.providers": {"echo": "other_plugin"}})
    with pytest.raises(ConfigError) as caught:
        installed_providers()
    assert "auth-echo" in str(caught.value) and "other-echo" in str(caught.value)


def test_invalid_type_name(fake_dist):
    fake_dist("auth-bad", {"authcore.providers": {"9lives": "x"}})
    with pytest.raises(ConfigError, match="auth-bad"):
        installed_providers()


def test_unknown_type_lists_installed_and_install_hint(fake_dist):
    fake_dist("auth-echo", {"authcore.providers": {"echo": "echo_plugin"}})
    with pytest.raises(UnknownProvider) as caught:
        AuthManager.from_config({"providers": [{"name": "corp", "type": "ldapx"}]})
    message = str(caught.value)
    assert "pip install auth-ldapx" in message
    assert "echo" in message


def test_entry_point_that_registers_nothing(fake_dist):
    fake_dist("auth-empty", {"authcore.providers": {"empty": "empty_plugin"}}, {"empty_plugin": "x = 1\n"})
    with pytest.raises(ConfigError, match="registers no provider"):
        AuthManager.from_config({"providers": [{"name": "empty"}]})


def test_entry_point_that_fails_to_import(fake_dist):
    fake_dist(
        "auth-broken",
        {"authcore.providers": {"broken": "broken_plugin"}},
        {"broken_plugin": "raise RuntimeError('boom')\n"},
    )
    with pytest.raises(ConfigError, match="failed to import"):
        AuthManager.from_config({"providers": [{"name": "broken"}]})


def test_entry_point_may_name_the_class(fake_dist):
    fake_dist(
        "auth-echo", {"authcore.providers": {"echo": "echo_plugin:EchoProvider"}}, {"echo_plugin": PROVIDER_MODULE}
    )
    with AuthManager.from_config({"providers": [{"name": "echo"}]}) as manager:
        assert manager.login("echo", login="a", password="b").login == "a"


def test_class_path_loading(fake_dist):
    fake_dist("mod-only", {}, {"my_auth": PROVIDER_MODULE + "\nclass NotAProvider: pass\n"})
    assert load_class("my_auth:EchoProvider").type == "echo"
    assert load_class("my_auth.EchoProvider").type == "echo"  # py-ispyb's dotted form
    with pytest.raises(ConfigError, match="not a subclass"):
        load_class("my_auth:NotAProvider")
    with pytest.raises(ConfigError, match="cannot import"):
        load_class("no_such_module_xyz:Thing")
    with pytest.raises(ConfigError, match="no attribute"):
        load_class("my_auth:Missing")
    for bad in ["", "a:b:c", "../etc:passwd", "my_auth:", "x y:Z"]:
        with pytest.raises(ConfigError):
            load_class(bad)


def test_class_in_config(fake_dist):
    fake_dist("mod-only", {}, {"my_auth": PROVIDER_MODULE})
    with AuthManager.from_config({"providers": [{"name": "mine", "class": "my_auth:EchoProvider"}]}) as manager:
        assert manager.login("mine", login="a", password="b").identity.provider == "mine"


def test_other_plugins_group_and_blocking(fake_dist, monkeypatch):
    audit = """
from authcore import hookimpl
EVENTS = []
@hookimpl
def authcore_login_succeeded(identity, provider):
    EVENTS.append((identity.login, provider))
"""
    fake_dist("authcore-audit", {"authcore.plugins": {"audit": "audit_plugin"}}, {"audit_plugin": audit})
    with AuthManager.from_config({"providers": [{"name": "dummy"}]}) as manager:
        manager.login("dummy", login="t", password="read")
    assert sys.modules["audit_plugin"].EVENTS == [("t", "dummy")]
    monkeypatch.setenv("AUTHCORE_BLOCK_PLUGINS", "audit")
    with AuthManager.from_config({"providers": [{"name": "dummy"}]}) as manager:
        manager.login("dummy", login="t", password="read")
    assert sys.modules["audit_plugin"].EVENTS == [("t", "dummy")]
