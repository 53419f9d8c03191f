from __future__ import annotations

import pkgutil
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


def test_loading_the_plugin_and_its_fixtures_imports_no_component_or_broker_provider() -> None:
    # What every pytest start-up pays: the plugin and the fixture modules it registers.
    code = (
        "import importlib, pkgutil, sys\n"
        "import pytest_resources.plugin, pytest_resources.fixtures as f\n"
        "for m in pkgutil.iter_modules(f.__path__):\n"
        "    importlib.import_module(f'{f.__name__}.{m.name}')\n"
        "heavy = ('.components', 'brokers.chain', 'tracemalloc', 'psutil', 'probes.memory',\n"
        "         'reporting.session', 'sysconfig')\n"
        "print(sorted(m for m in sys.modules if any(h in m for h in heavy)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_plugin_registers_every_fixture_module() -> None:
    from pytest_resources import fixtures
    from pytest_resources.plugin import FIXTURE_MODULES

    assert sorted(FIXTURE_MODULES) == sorted(
        m.name for m in pkgutil.iter_modules(fixtures.__path__)
    )
