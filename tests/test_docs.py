"""The generated configuration reference matches the models it is generated from."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_configuration_reference_is_current():
    spec = importlib.util.spec_from_file_location(
        "generate_config_reference", ROOT / "docs/generate_config_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    current = (ROOT / "docs/configuration.md").read_text()
    assert module.render() == current, "run: python docs/generate_config_reference.py"
