"""authcore's test kit for provider authors and host applications.

Installed with authcore as a pytest plugin (entry point ``pytest11``), so its fixtures
are available in every test session: ``authcore_manager_factory`` and
``authcore_state_dir``. A provider package proves it keeps the contract by
subclassing :class:`ProviderConformance`::

    from authcore.testing import Login, ProviderConformance

    class TestMyProvider(ProviderConformance):
        provider_name = "mine"

        @pytest.fixture
        def conformance_config(self):
            return {"providers": [{"name": "mine", "type": "mine", "config": {...}}]}

        @pytest.fixture
        def valid_logins(self):
            return [Login(login="alice", password="right", expect_permissions=("read",))]

        @pytest.fixture
        def invalid_logins(self):
            return [Login(login="alice", password="wrong"), Login(login="nobody", password="x")]

A session store (a plugin's Redis store, say) proves the same by subclassing
:class:`SessionStoreConformance` and overriding its ``session_store`` fixture.
"""

from __future__ import annotations

from .conformance import Login, ProviderConformance
from .session_stores import SessionStoreConformance

__all__ = ["Login", "ProviderConformance", "SessionStoreConformance"]
