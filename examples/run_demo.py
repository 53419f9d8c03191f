"""Run the demo suite twice: warn mode (outcomes kept, leaks listed) and strict mode (leaks
fail). Exits 0 when both behave as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).parent / "demo"
EXPECTED_LEAKING = 7


def run(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(DEMO), *args]
    print("$", " ".join(cmd[2:]), flush=True)
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    print(result.stdout, result.stderr, sep="", flush=True)
    return result


def main() -> int:
    warn = run()
    strict = run("--resource-strict")
    expected = f"{EXPECTED_LEAKING} test(s) leaked resources"
    ok = (
        warn.returncode == 0
        and expected in warn.stdout
        and strict.returncode == 1
        and f"{EXPECTED_LEAKING} errors" in strict.stdout
    )
    print("demo:", "reports as expected" if ok else "UNEXPECTED RESULT", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
