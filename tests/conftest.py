from __future__ import annotations

import pytest
from pytester_run import Run


@pytest.fixture
def run(pytester: pytest.Pytester) -> Run:
    return Run(pytester)
