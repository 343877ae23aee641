"""Alembic migrations of the ``local`` provider's tables (run by the provider, or ``alembic`` by hand)."""

from typing import Final

#: The newest revision in ``versions/``: a database that records it needs no migration, and the
#: provider then starts without importing alembic (a test checks this against the scripts).
HEAD: Final = "0004"
