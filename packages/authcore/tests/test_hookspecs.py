"""Every hook is documented where it is declared (as datasette checks its own)."""

from __future__ import annotations

import inspect

from authcore import hookspecs


def test_every_hook_has_a_docstring():
    hooks = [name for name in dir(hookspecs) if name.startswith("authcore_")]
    assert len(hooks) >= 8
    for name in hooks:
        doc = inspect.getdoc(getattr(hookspecs, name))
        assert doc and len(doc) > 40, f"{name} is not documented"
