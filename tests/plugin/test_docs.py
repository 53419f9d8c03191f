from __future__ import annotations

import re
import tomllib
from pathlib import Path

from pytester_run import Run

DOCS = Path(__file__).parents[2] / "docs"


def test_every_option_and_ini_key_is_documented(run: Run) -> None:
    result = run("", "--help")
    text = result.stdout.str()
    section = text.split("resource leak checks (pytest-resource-guard):", 1)[1].split("\n\n", 1)[0]
    options = set(re.findall(r"(--[a-z][a-z-]+)", section))
    ini_keys = set(re.findall(r"^  (resource_[a-z_]+)", text, flags=re.MULTILINE))
    assert "--resource-strict" in options
    assert "resource_ignore_threads" in ini_keys
    documented = "\n".join(p.read_text() for p in DOCS.rglob("*.md"))
    missing = sorted(name for name in options | ini_keys if f"`{name}" not in documented)
    assert missing == []


def test_readme_links_are_absolute_and_point_at_files_that_exist() -> None:
    # PyPI renders the README without the repository: a relative link there is a dead link.
    root = DOCS.parent
    home = tomllib.loads((root / "pyproject.toml").read_text())["project"]["urls"]["Homepage"]
    links = re.findall(r"\]\(([^)]+)\)", (root / "README.md").read_text())
    assert links
    assert [link for link in links if not link.startswith("https://")] == []
    blob = f"{home}/blob/main/"
    ours = [link.removeprefix(blob) for link in links if link.startswith(blob)]
    assert ours
    assert [path for path in ours if not (root / path).is_file()] == []


def test_readme_says_how_to_install_the_distribution() -> None:
    assert "pip install pytest-resource-guard\n" in (DOCS.parent / "README.md").read_text()
