"""Alembic migrations of the ``local`` provider's tables (run by the provider, or ``alembic`` by hand)."""
