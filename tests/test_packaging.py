"""The wheel holds the plugin and its metadata; the sdist holds the whole project (code, tests,
docs, demo, benchmarks, tox.ini, changelog, licence), built the way a release is."""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
#: Directories the sdist carries whole, and the files at its top.
SDIST_DIRS = ("pytest_resources", "tests", "docs", "examples", "benchmarks")
SDIST_FILES = {"LICENSE", "CHANGELOG.md", "README.md", "tox.ini", "pyproject.toml", "MANIFEST.in"}
JUNK = (".git", ".tox", "*.egg-info", "build", "dist", "__pycache__", "*.pyc", ".*_cache", ".venv")


def _project_files() -> set[str]:
    found = set(SDIST_FILES)
    for top in SDIST_DIRS:
        for path in (ROOT / top).rglob("*"):
            parts = path.relative_to(ROOT).parts
            if path.is_file() and not any(p.endswith(("__pycache__", "_cache")) for p in parts):
                found.add(path.relative_to(ROOT).as_posix())
    return found


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``python -m build`` on a copy of the tree: the sdist, then the wheel built from it."""
    base = tmp_path_factory.mktemp("dists")
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*JUNK))
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(base / "dist"), str(source)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    [sdist] = (base / "dist").glob("*.tar.gz")
    [wheel] = (base / "dist").glob("*.whl")
    return sdist, wheel


@pytest.mark.slow
def test_the_sdist_holds_the_whole_project(dists: tuple[Path, Path]) -> None:
    with tarfile.open(dists[0]) as archive:
        names = {m.name.split("/", 1)[1] for m in archive.getmembers() if m.isfile()}
    generated = {"PKG-INFO", "setup.cfg"} | {n for n in names if ".egg-info/" in n}
    assert names - generated == _project_files()
    assert not any(n.startswith(".ci/") for n in names)


@pytest.mark.slow
def test_the_wheel_holds_the_plugin_its_data_and_its_licence(dists: tuple[Path, Path]) -> None:
    with zipfile.ZipFile(dists[1]) as archive:
        names = set(archive.namelist())
        [info] = {n.split("/", 1)[0] for n in names if ".dist-info/" in n}
        metadata = email.message_from_bytes(archive.read(f"{info}/METADATA"))
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    package = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "pytest_resources").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert names - {n for n in names if n.startswith(info)} == package
    assert {"pytest_resources/py.typed", f"{info}/licenses/LICENSE"} <= names
    assert "pytest_resources/detector/reporting/report-schema.json" in names
    assert metadata["License-Expression"] == "MIT"
    urls = [str(u).split(", ", 1)[0] for u in metadata.get_all("Project-URL") or []]
    assert sorted(urls) == ["Changelog", "Documentation", "Homepage", "Issues"]
    assert "[pytest11]\nresources = pytest_resources.plugin" in entry_points
