from __future__ import annotations

import re
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
