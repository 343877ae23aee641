"""``python -m auth_static PASSWORD``: print a password hash for the configuration."""

from __future__ import annotations

import sys

from auth_static import hash_password

if len(sys.argv) != 2 or not sys.argv[1]:
    sys.exit("usage: python -m auth_static PASSWORD")
print(hash_password(sys.argv[1]))
