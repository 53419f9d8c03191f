from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pytester_run import Run

SUITE = """
import os, threading
import pytest
STOP = threading.Event()

@pytest.mark.parametrize("n", range(5))
def test_clean_before(n):
    pass

def test_thread_leak():
    threading.Thread(target=STOP.wait, name="html-leak", daemon=True).start()

def test_env_leak():
    os.environ["HTML_LEAK"] = "<b>not markup</b>"

@pytest.mark.allow_leaks("env", reason="known")
def test_allowed():
    os.environ["HTML_ALLOWED"] = "1"

@pytest.mark.parametrize("n", range(3))
def test_clean_after(n):
    pass
"""
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-pipe",
)
# The browser's own fds 3 and 4 are the pipe ends (Chrome DevTools protocol over a pipe).
EXEC_WITH_PIPE = "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
EXEC_WITH_PIPE += "os.execv(sys.argv[3], sys.argv[3:])"
TIMEOUT = 60.0


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe: no extra packages."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM is not None
        to_browser, self._send = os.pipe()
        self._recv, from_browser = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", EXEC_WITH_PIPE, str(to_browser), str(from_browser),
                 CHROMIUM, *FLAGS, f"--user-data-dir={profile}"],
                pass_fds=(to_browser, from_browser),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            os.close(to_browser)
            os.close(from_browser)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session = ""

    def close(self) -> None:
        try:
            self.call("Browser.close", session=False)
        finally:
            os.close(self._send)
            try:
                self.process.wait(timeout=TIMEOUT)
            finally:
                os.close(self._recv)

    def call(self, method: str, session: bool = True, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._send, json.dumps(message).encode() + b"\0")
        reply = self._wait(lambda m: m.get("id") == self._next_id)
        assert "error" not in reply, reply
        result: dict[str, Any] = reply["result"]
        return result

    def wait_event(self, method: str) -> dict[str, Any]:
        return self._wait(lambda m: m.get("method") == method)

    def _wait(self, match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message: dict[str, Any] = json.loads(raw)
                if "method" in message:
                    self.events.append(message)
                if match(message):
                    return message
            left = deadline - time.monotonic()
            assert left > 0, "no answer from chromium"
            ready, _, _ = select.select([self._recv], [], [], left)
            if ready:
                chunk = os.read(self._recv, 1 << 20)
                assert chunk, f"chromium exited with {self.process.poll()}"
                self._buffer += chunk

    def open(self, url: str) -> None:
        target = self.call("Target.createTarget", session=False, url="about:blank")
        attached = self.call(
            "Target.attachToTarget", session=False, targetId=target["targetId"], flatten=True
        )
        self.session = attached["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=1100, height=1400,
                  deviceScaleFactor=1, mobile=False)  # fmt: skip
        self.call("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def errors(self) -> list[dict[str, Any]]:
        """Console errors, uncaught exceptions and browser log errors seen so far."""
        return [
            e
            for e in self.events
            if e["method"] == "Runtime.exceptionThrown"
            or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
            or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
        ]

    def requested(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e["method"] == "Network.requestWillBeSent"
        ]


def screenshot(browser: Browser, path: Path) -> None:
    shot = browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    path.write_bytes(base64.b64decode(shot["data"]))


@pytest.fixture
def browser(tmp_path: Path) -> Any:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    opened = Browser(tmp_path / "profile")
    yield opened
    opened.close()


def test_html_report_renders_in_chromium_with_the_right_counts(
    run: Run, browser: Browser, tmp_path: Path
) -> None:
    result = run(SUITE, "--resource-html=report.html", "--resource-report=report.json")
    result.assert_outcomes(passed=11, warnings=2)
    page = run.pytester.path / "report.html"
    browser.open(page.as_uri())

    assert browser.errors() == []
    assert browser.requested() == [page.as_uri()]  # self-contained: nothing else fetched
    text = "document.getElementById('{}').textContent"
    assert browser.evaluate(text.format("tests")) == "11"
    assert browser.evaluate(text.format("leaking-tests")) == "2"
    assert browser.evaluate(text.format("leaks")) == "2"
    assert browser.evaluate(text.format("expected")) == "1"
    rows = browser.evaluate(
        "[...document.querySelectorAll('tr.leaking-test td:first-child')].map(e => e.textContent)"
    )
    assert rows == ["test_it.py::test_thread_leak", "test_it.py::test_env_leak",
                    "test_it.py::test_allowed"]  # fmt: skip
    # Escaped, not interpreted: the env value shows as text.
    assert "<b>not markup</b>" in browser.evaluate("document.body.innerText")
    for kind in ("threads", "tasks", "fds", "processes", "rss"):
        box = browser.evaluate(
            f"(r => [r.width, r.height])(document.getElementById('chart-{kind}')"
            ".getBoundingClientRect())"
        )
        assert box[0] > 500, (kind, box)
        assert box[1] > 50, (kind, box)
    points = browser.evaluate(
        "document.querySelector('#chart-threads polyline.series').getAttribute('points')"
    )
    ys = [float(point.split(",")[1]) for point in points.split()]
    assert len(ys) == 11
    # The leaked thread stays: the line steps up at the 6th test and never comes back down.
    assert ys[:5] == [ys[0]] * 5
    assert all(y < ys[0] for y in ys[5:])
    assert browser.evaluate("document.querySelectorAll('#chart-threads .leak-tick').length") == 2
    embedded = json.loads(browser.evaluate(text.format("report-data")))
    assert embedded == json.loads((run.pytester.path / "report.json").read_text())

    screenshot(browser, tmp_path / "report.png")
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_xdist_writes_one_html_file_with_a_line_per_worker(run: Run) -> None:
    result = run(SUITE, "-n", "2", "--resource-html=report.html")
    result.assert_outcomes(passed=11, warnings=2)
    html = (run.pytester.path / "report.html").read_text()
    assert html.count('<polyline class="series" data-worker="gw') == 5 * 2  # five charts
    assert 'id="tests">11<' in html


def test_no_leaks_says_so(run: Run) -> None:
    run("def test_ok(): pass", "--resource-html=report.html").assert_outcomes(passed=1)
    assert 'id="no-leaks"' in (run.pytester.path / "report.html").read_text()
