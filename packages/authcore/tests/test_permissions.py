"""Permission strings, the Jupyverse mapping form, wildcards and require()."""

from __future__ import annotations

import pytest

from authcore import Forbidden
from authcore.permissions import allows, missing, normalize, require


def test_normalize_forms():
    assert normalize(None) == ()
    assert normalize("read") == ("read",)
    assert normalize(["b", "a", "b"]) == ("a", "b")
    assert normalize({"contents": ["read", "write"], "kernels": "execute"}) == (
        "contents:read",
        "contents:write",
        "kernels:execute",
    )


@pytest.mark.parametrize("bad", ["", "a b", "tab\there", "nul\x00", "x" * 201, "new\nline"])
def test_normalize_refuses_malformed(bad):
    with pytest.raises(ValueError):
        normalize([bad])


def test_normalize_refuses_non_strings():
    with pytest.raises(TypeError):
        normalize([1])  # type: ignore[list-item]


def test_unicode_permissions_are_fine():
    assert normalize(["données:lire"]) == ("données:lire",)


@pytest.mark.parametrize(
    ("granted", "wanted", "ok"),
    [
        (["read"], "read", True),
        (["read"], "write", False),
        (["*"], "anything", True),
        (["*"], "contents:read", True),
        (["contents:*"], "contents:read", True),
        (["contents:*"], "kernels:read", False),
        (["contents:*"], "contents", False),
        (["contents:read"], "contents:write", False),
        ([], "read", False),
    ],
)
def test_allows(granted, wanted, ok):
    assert allows(granted, wanted) is ok


def test_require_and_missing():
    require(["a", "contents:*"], {"contents": ["read"]})
    require(["a"], None)
    assert missing(["a"], ["a", "b", "c"]) == ("b", "c")
    with pytest.raises(Forbidden) as caught:
        require(["a"], ["a", "b"])
    assert "b" in str(caught.value)
    assert caught.value.status_code == 403
