"""``Provider`` is generic over its settings model: declared once, typed, checked once by the base."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Generic, TypeVar

import pytest

import authcore.config
import authcore.plugins
from authcore import Credentials, Identity, Provider, ProviderConfig

REPO = Path(__file__).resolve().parents[3]


class AlphaConfig(ProviderConfig):
    greeting: str = "hello"


class BetaConfig(ProviderConfig):
    other: int = 1


class Alpha(Provider[AlphaConfig]):
    type = "alpha"

    def authenticate(self, credentials: Credentials) -> Identity:
        return Identity(login=self.config.greeting)  # typed as AlphaConfig: no assert, no cast


def test_the_type_argument_is_the_settings_model():
    assert Alpha.Config is AlphaConfig
    provider = Alpha("a", AlphaConfig(greeting="hi"))
    assert provider.config.greeting == "hi"


def test_a_config_of_another_model_is_refused_by_the_base():
    with pytest.raises(TypeError, match="Alpha needs AlphaConfig, not BetaConfig"):
        Alpha("a", BetaConfig())


def test_a_subclass_inherits_the_settings_model():
    class Gamma(Alpha):
        type = "gamma"

    assert Gamma.Config is AlphaConfig


def test_a_subclass_may_narrow_the_settings_model_with_config():
    class NarrowConfig(AlphaConfig):
        extra_field: int = 2

    class Narrow(Alpha):  # no type argument of its own: Alpha's is not taken as a second declaration
        Config = NarrowConfig

    assert Narrow.Config is NarrowConfig
    assert Narrow("n", NarrowConfig()).config.extra_field == 2


def test_a_generic_intermediate_class_passes_its_argument_on():
    C = TypeVar("C", bound=ProviderConfig)

    class Base(Provider[C], Generic[C]):
        def authenticate(self, credentials: Credentials) -> Identity:
            return Identity(login="base")

    class Concrete(Base[BetaConfig]):
        type = "concrete"

    assert Base.Config is ProviderConfig  # a TypeVar names no model: the default stays
    assert Concrete.Config is BetaConfig
    assert Concrete("c", BetaConfig()).config.other == 1


def test_a_bare_provider_with_config_still_works():
    # Third parties written against the old contract set ``Config`` on a bare ``Provider``.
    class Old(Provider):
        type = "old"
        Config = BetaConfig

        def authenticate(self, credentials: Credentials) -> Identity:
            return Identity(login="old")

    assert Old.Config is BetaConfig
    assert isinstance(Old("o", BetaConfig()).config, BetaConfig)
    with pytest.raises(TypeError):
        Old("o", AlphaConfig())


def test_config_and_type_argument_that_agree_are_accepted():
    class Both(Provider[AlphaConfig]):
        Config = AlphaConfig

        def authenticate(self, credentials: Credentials) -> Identity:
            return Identity(login="both")

    assert Both.Config is AlphaConfig


def test_config_and_type_argument_that_disagree_are_an_error_naming_both():
    with pytest.raises(TypeError, match=r"Config = BetaConfig disagrees with the type argument AlphaConfig"):

        class Confused(Provider[AlphaConfig]):
            Config = BetaConfig

            def authenticate(self, credentials: Credentials) -> Identity:
                return Identity(login="x")


#: What a provider wrote when ``Provider.config`` was untyped: a re-check or a second settings attribute.
WORKAROUNDS = re.compile(r"assert isinstance\((self\.)?config\b|isinstance\(config, \w+Config\)|self\.settings\b")


def test_no_provider_rechecks_or_restores_its_config():
    sources = [*REPO.glob("packages/auth-*/src/**/*.py"), *REPO.glob("examples/*/src/**/*.py")]
    assert len(sources) > 10
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if WORKAROUNDS.search(line)
    ]
    assert found == []


def test_one_name_per_idea_in_the_configuration():
    # The YAML entry is a ProviderEntry, the settings model a ProviderConfig, the instance a Provider.
    assert hasattr(authcore.config, "ProviderEntry")
    assert not hasattr(authcore.config, "ProviderSettings")
    assert not hasattr(authcore.plugins, "ProviderEntry")  # the installed type is an InstalledProvider
