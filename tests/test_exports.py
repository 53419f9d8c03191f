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


def _component_modules() -> list[str]:
    from pytest_resources import components

    prefix = f"{components.__name__}."
    return [components.__name__] + [
        m.name for m in pkgutil.walk_packages(components.__path__, prefix)
    ]


@pytest.mark.parametrize("module", _component_modules())
def test_a_component_imports_without_pytest_or_the_detector(module: str) -> None:
    # Components are usable without pytest: importing one must not pull it (or the
    # detector, brokers and fixtures that need it) in.
    code = (
        "import sys\n"
        f"import {module}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pytest', '_pytest')\n"
        "    or m.startswith(('pytest_resources.detector', 'pytest_resources.brokers',\n"
        "                     'pytest_resources.fixtures', 'pytest_resources.plugin'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_package_imports_without_pytest() -> None:
    code = "import sys, pytest_resources\nprint('pytest' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_public_names_are_listed_once_and_typed() -> None:
    # The TYPE_CHECKING imports of __init__ are the only table: every entry resolves, and
    # dir() offers exactly those names.
    assert sorted(dir(pytest_resources)) == sorted(pytest_resources.__all__)
    assert len(set(pytest_resources.__all__)) == len(pytest_resources.__all__)
