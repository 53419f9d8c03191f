from __future__ import annotations

import subprocess
import sys

import pytest

import pytest_resources


@pytest.mark.parametrize("name", pytest_resources.__all__)
def test_every_public_name_resolves_from_the_top_level_package(name: str) -> None:
    assert getattr(pytest_resources, name) is not None


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        pytest_resources.Nope  # noqa: B018


def test_loading_the_plugin_does_not_import_the_components() -> None:
    code = (
        "import sys, pytest_resources.plugin\n"
        "print(sorted(m for m in sys.modules if '.components' in m))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
