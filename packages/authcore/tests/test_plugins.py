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
    fake_dist("auth-echo", {"authcore.providers": {"echo": "echo_plugin"}}, version="1.2.0")
    fake_dist("other-echo", {"authcore.providers": {"echo": "other_plugin"}}, version="3.4.5")
    with pytest.raises(ConfigError) as caught:
        installed_providers()
    message = str(caught.value)
    # Both distributions, each with its version: which of two installs to remove.
    assert "'auth-echo' 1.2.0" in message and "'other-echo' 3.4.5" in message, message


@pytest.mark.parametrize("name", ["9lives", "LDAP", "Echo", "my type", '"echo "', "a" * 65, "-x", "_x"])
def test_invalid_type_name(fake_dist, name):
    fake_dist("auth-bad", {"authcore.providers": {name: "x"}}, version="0.7.1")
    with pytest.raises(ConfigError) as caught:
        installed_providers()
    message = str(caught.value)
    assert "'auth-bad' 0.7.1" in message and "lower-case" in message, message


def test_case_variant_of_an_installed_type_names_both(fake_dist):
    # entry_points.txt "LDAP  = ..." (from a pyproject key "LDAP ") would be a second type beside "ldap".
    fake_dist("auth-echo", {"authcore.providers": {"echo": "echo_plugin"}}, version="1.0.0")
    fake_dist("auth-shadow", {"authcore.providers": {"ECHO ": "shadow_plugin"}}, version="2.0.0")
    with pytest.raises(ConfigError) as caught:
        installed_providers()
    message = str(caught.value)
    assert "'auth-shadow' 2.0.0" in message and "'ECHO'" in message
    assert "'echo' of 'auth-echo' 1.0.0" in message, message


@pytest.mark.parametrize("name", ["echo", "echo-2", "my_echo", "e" * 64])
def test_valid_type_names(fake_dist, name):
    fake_dist("auth-ok", {"authcore.providers": {name: "x"}})
    assert name in {e.name for e in installed_providers()}


def test_unknown_type_lists_installed_and_suggests_a_typo(fake_dist):
    fake_dist("auth-echo", {"authcore.providers": {"echo": "echo_plugin"}})
    for typo in ("ecoh", "Echo", "ECHO"):
        with pytest.raises(UnknownProvider) as caught:
            AuthManager.from_config({"providers": [{"name": "corp", "type": typo}]})
        message = str(caught.value)
        assert "installed: " in message and "echo" in message
        assert "did you mean 'echo'?" in message, message
        # No install hint for a name that is not one of ours: the index has no such package of ours.
        assert "pip install" not in message, message


def test_unknown_type_that_is_not_ours_has_no_pip_hint(fake_dist):
    fake_dist("auth-echo", {"authcore.providers": {"echo": "echo_plugin"}})
    with pytest.raises(UnknownProvider) as caught:
        AuthManager.from_config({"providers": [{"name": "corp", "type": "kerberos"}]})
    message = str(caught.value)
    assert "pip install" not in message
    assert "install the distribution that provides it" in message
    assert message.startswith("<dict>, at providers[0].type: ")


def test_install_hint_only_for_our_types():
    # Which types are installed depends on the environment: the message is built from a listing.
    from authcore.plugins import InstalledProvider, _unknown_type_message

    only_dummy = {"dummy": InstalledProvider("dummy", "auth-dummy", "0.1.0", "auth_dummy")}
    assert "; install it with: pip install auth-ldap (authcore's own" in _unknown_type_message("ldap", only_dummy)
    typo = _unknown_type_message("keycloack", only_dummy)
    assert "; did you mean 'keycloak'? Install it with: pip install auth-keycloak (authcore's own" in typo
    assert "--find-links" in typo
    assert "pip install" not in _unknown_type_message("oidc", only_dummy)
    assert "pip install" not in _unknown_type_message("dumy", only_dummy)  # installed: the typo is named


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
