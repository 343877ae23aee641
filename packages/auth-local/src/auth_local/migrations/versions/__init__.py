"""Revisions, oldest first: ``v0001_initial`` (revision 0001)."""
