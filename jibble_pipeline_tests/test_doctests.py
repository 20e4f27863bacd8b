"""The examples in the package's docstrings run, and hold."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import jibble_pipeline

PACKAGE_DIR = Path(jibble_pipeline.__file__).parent


def modules_with_examples() -> list[str]:
    """Dotted names of the package's modules whose source holds a ``>>>`` example."""
    names = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if ">>>" in path.read_text(encoding="utf-8"):
            parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = modules_with_examples()


def test_examples_are_found():
    assert MODULES, "no module of the package has a doctest"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str):
    results = doctest.testmod(importlib.import_module(name))
    assert results.attempted > 0, f"{name} mentions >>> but has no example doctest can run"
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples failed"
