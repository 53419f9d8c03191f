"""The demo (README's main command) shows every kind, and the README's sample is what it prints."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
#: What varies from run to run: ports, pids, fd and inode numbers, thread idents, temp dirs,
#: durations, the interpreter's path.
VARYING = (
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:PORT"),
    (re.compile(r"\bpid \d+"), "pid N"),
    (re.compile(r"\bfd \d+"), "fd N"),
    (re.compile(r"\[\d+\]"), "[N]"),
    (re.compile(r"ident: \d+"), "ident: N"),
    (re.compile(r"pytest-resource-guard-demo-[^/]+"), "pytest-resource-guard-demo-X"),
    (re.compile(r"pytest-of-[^/]+/pytest-\d+"), "pytest-of-USER/pytest-N"),
    (re.compile(r" in \d+\.\d+s\b"), " in Ns"),
    (re.compile(re.escape(sys.executable) + r"\b"), "python"),
)
#: A README sample line that stands for any number of output lines.
GAP = "..."


def normalise(text: str) -> list[str]:
    for pattern, replacement in VARYING:
        text = pattern.sub(replacement, text)
    return [line.rstrip() for line in text.splitlines()]


@pytest.fixture(scope="module")
def demo() -> dict[str, str]:
    """The demo's output, step by step (keyed by the step's title)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "run_demo.py")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("demo: every step reported as expected")
    steps = result.stdout.split("\n### ")[1:]
    return {step.split("\n", 1)[0]: step for step in steps}


def _step(demo: dict[str, str], start: str) -> str:
    [text] = [text for title, text in demo.items() if title.startswith(start)]
    return text


#: Per step, what each kind's leak must show.
EVERY_KIND = {
    "warn mode": {
        "thread": "thread 'forgotten-worker'",
        "task": "poll_forever",
        "file": "test_file_leak0/data.txt",
        "socket": "(socket 127.0.0.1:",
        "file dropped unclosed (ResourceWarning)": "dropped.txt",
        "child process": "time.sleep(5)",
        "env var": "DEMO_LEAKED_SETTING",
        "cwd": "test_cwd_leak0",
        "sys.path": "/opt/demo-plugins",
        "signal handler": "SIGUSR1",
        "root logging handler": "StreamHandler",
        "module-scoped fixture": "module-scoped fixture 'metrics_pusher'",
    },
    "strict mode": {"errors in teardown": "ERROR at teardown of test_thread_leak"},
    "--resource-trace": {
        "thread created at": "test_leaks.py:29 in test_thread_leak",
        "socket created at": "in test_socket_leak",
        "process created at": "in test_child_process_leak",
    },
    "--resource-repeat": {"memory growth site": "test_memory.py:11"},
    "warnings filters": {"warnings filter": "demo:"},
}


def test_the_demo_shows_every_kind(demo: dict[str, str]) -> None:
    missing = [
        f"{step}: {what} ({text!r})"
        for step, kinds in EVERY_KIND.items()
        for what, text in kinds.items()
        if text not in _step(demo, step)
    ]
    assert missing == []
    # The clean twin of each leak stays clean.
    warn = _step(demo, "warn mode")
    for clean in ("thread_joined", "env_restored", "cwd_restored", "uses_module_fixture"):
        assert f"::test_{clean} leaked" not in warn
    assert "::test_memory_freed leaked" not in _step(demo, "--resource-repeat")
    assert "::test_warnings_filter_scoped leaked" not in _step(demo, "warnings filters")
    assert "12 test(s) leaked resources (warn mode: outcomes unchanged)" in warn


def _readme_sample() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"\n```text\n(.*?)\n```\n", readme, re.DOTALL)
    assert match, "README.md has no ```text sample block"
    return normalise(match.group(1))


def test_the_readme_sample_is_what_the_demo_prints(demo: dict[str, str]) -> None:
    output = normalise("\n".join(f"### {text}" for text in demo.values()))
    sample = _readme_sample()
    segments: list[list[str]] = [[]]
    for line in sample:
        if line == GAP:
            segments.append([])
        else:
            segments[-1].append(line)
    position = 0
    for segment in filter(None, segments):
        found = next(
            (
                i
                for i in range(position, len(output) - len(segment) + 1)
                if output[i : i + len(segment)] == segment
            ),
            None,
        )
        assert found is not None, (
            "README sample lines not printed by the demo (in this order):\n"
            + "\n".join(segment)
            + "\n--- demo output ---\n"
            + "\n".join(output)
        )
        position = found + len(segment)
