"""Revisions, oldest first: ``v0001_initial`` (0001), ``v0002_account_tokens`` (0002), ``v0003_second_factor``."""
