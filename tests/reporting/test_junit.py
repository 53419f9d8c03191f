from __future__ import annotations

import xml.etree.ElementTree as ET

from pytester_run import Run

SUITE = """
import os, threading
import pytest
STOP = threading.Event()

def test_two_leaks():
    threading.Thread(target=STOP.wait, name="junit-leak", daemon=True).start()
    os.environ["JUNIT_LEAK"] = "1"

@pytest.mark.allow_leaks("env", reason="known")
def test_allowed():
    os.environ["JUNIT_ALLOWED"] = "1"

def test_clean():
    pass
"""


def properties(run: Run, *args: str) -> dict[str, list[str]]:
    run(SUITE, "--junitxml=junit.xml", *args)
    tree = ET.parse(run.pytester.path / "junit.xml")
    return {
        case.attrib["name"]: [
            prop.attrib["value"]
            for prop in case.iter("property")
            if prop.attrib["name"] == "resource_leak"
        ]
        for case in tree.iter("testcase")
    }


def test_each_leak_is_a_property_of_its_test_case(run: Run) -> None:
    found = properties(run)
    assert sorted(v.splitlines()[0] for v in found["test_two_leaks"]) == [
        "env: os.environ['JUNIT_LEAK'] added: '1'",
        "threads: thread 'junit-leak'",
    ]
    assert found["test_allowed"] == []
    assert found["test_clean"] == []


def test_strict_mode_keeps_the_properties_on_the_errored_case(run: Run) -> None:
    found = properties(run, "--resource-strict")
    assert len(found["test_two_leaks"]) == 2
    assert "target: threading.Event.wait" in "".join(found["test_two_leaks"])
