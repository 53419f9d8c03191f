"""Run the demo suite the way a user would: with the installed plugin, on a copy of
examples/demo outside the source tree, one step per thing to see. Exits 0 when every step
reports what it should.

``tox -e demo`` builds the wheel, installs it and runs this; ``python examples/run_demo.py``
uses whatever pytest-resource-guard the running Python has installed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

DEMO = Path(__file__).parent / "demo"
#: Every run: no cache directory in the copy, and the file order (pytest-randomly, if
#: installed, would shuffle it) so the output reads the same each time.
COMMON = ("-p", "no:cacheprovider", "-p", "no:randomly")
# The warnings-filter test changes filters that persist only without pytest's warnings
# plugin: the last step shows it there, the others leave it out.
NOT_FILTERS = "not warnings_filter"


class Step(NamedTuple):
    title: str
    args: tuple[str, ...]
    exit_code: int
    #: Texts the output must contain.
    expect: tuple[str, ...]


STEPS = (
    Step(
        "warn mode (the default): every leak is listed, no outcome changes",
        ("-k", NOT_FILTERS),
        0,
        ("forgotten-worker", "poll_forever", "DEMO_LEAKED_SETTING", "metrics-pusher"),
    ),
    Step(
        "strict mode: each leaking test errors in teardown",
        ("--resource-strict", "-k", NOT_FILTERS),
        1,
        ("ERROR at teardown of test_thread_leak",),
    ),
    Step(
        "--resource-trace: where each leaked thread, socket and process was created",
        ("--resource-trace", "-k", "thread_leak or socket_leak or child_process_leak"),
        0,
        ("created at",),
    ),
    Step(
        "--resource-repeat: memory that grows on every run of a test",
        ("test_memory.py", "--resource-repeat=3"),
        0,
        ("test_memory_leak",),
    ),
    Step(
        "warnings filters, where they persist (without pytest's warnings plugin)",
        ("-p", "no:warnings", "--resource-strict", "-k", "warnings_filter"),
        1,
        ("warnings filters",),
    ),
)


def installed_plugin() -> str:
    """Which pytest-resource-guard runs the demo, and from where."""
    import json
    from importlib.metadata import distribution

    import pytest_resources

    dist = distribution("pytest-resource-guard")
    where = Path(pytest_resources.__file__).parent
    text = f"pytest-resource-guard {dist.version} from {where}"
    origin = json.loads(dist.read_text("direct_url.json") or "{}")
    if origin.get("dir_info", {}).get("editable"):
        text += " (an editable install; tox -e demo installs the wheel)"
    return text


def run(step: Step, cwd: Path) -> bool:
    shown = " ".join(a if " " not in a else repr(a) for a in step.args)
    print(f"\n### {step.title}\n$ pytest {shown}".rstrip())
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *COMMON, *step.args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    print(result.stdout, result.stderr, sep="", end="", flush=True)
    missing = [text for text in step.expect if text not in result.stdout]
    if result.returncode != step.exit_code or missing:
        print(f"UNEXPECTED: exit code {result.returncode} (expected {step.exit_code})", end="")
        print(f", missing {missing}" if missing else "")
        return False
    return True


def main() -> int:
    print("demo:", installed_plugin(), flush=True)
    with tempfile.TemporaryDirectory(prefix="pytest-resource-guard-demo-") as scratch:
        suite = Path(scratch) / "demo"
        shutil.copytree(DEMO, suite, ignore=shutil.ignore_patterns("__pycache__"))
        ok = [run(step, suite) for step in STEPS]
    print("\ndemo:", "every step reported as expected" if all(ok) else "UNEXPECTED RESULT")
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
