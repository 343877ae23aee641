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

A session store (ours, Redis included, or a plugin's) proves the same by subclassing
:class:`SessionStoreConformance` and overriding its ``session_store`` fixture, and a web
adapter by subclassing :class:`WebAdapterContract`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The pytest plugin (``authcore.testing.plugin``) is loaded in every pytest run where authcore
# is installed, and importing it runs this file first: the suites, and the core they test, are
# imported when a test module asks for them (PEP 562), not then.
_MODULE_OF = {
    "Login": "conformance",
    "ProviderConformance": "conformance",
    "SessionStoreConformance": "session_stores",
    "WebAdapterContract": "web_contract",
}

__all__ = ["Login", "ProviderConformance", "SessionStoreConformance", "WebAdapterContract"]

if TYPE_CHECKING:
    from .conformance import Login, ProviderConformance
    from .session_stores import SessionStoreConformance
    from .web_contract import WebAdapterContract
else:

    def __getattr__(name: str) -> Any:
        module = _MODULE_OF.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value
