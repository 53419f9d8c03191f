"""The env kind's interpreter-wide settings (probes/interpreter.py), active mock patches,
repairs back to the session's start and pytest's own reset of the warnings filters."""

from __future__ import annotations

from pytester_run import Run, assert_lines

# Each test leaks one setting; with --resource-strict, the check after it sees it repaired.
LEAKS = """
import asyncio, atexit, builtins, locale, logging, os, shutil, socket, sys, sysconfig
import threading, time

sysconfig.get_config_vars()  # made at import: filling it lazily later is no leak
OTHER_LOCALE = "C" if locale.setlocale(locale.LC_CTYPE) != "C" else "C.UTF-8"

def hook(*args):
    return None

class Finder:
    def find_spec(self, *args):
        return None

class Policy(asyncio.DefaultEventLoopPolicy):
    pass

def test_argv():
    sys.argv.append("--leaked")

def test_argv_repaired():
    assert "--leaked" not in sys.argv

def test_path_hooks():
    sys.path_hooks.append(hook)

def test_meta_path():
    sys.meta_path.insert(0, Finder())

def test_meta_path_repaired():
    assert not any(isinstance(f, Finder) for f in sys.meta_path)

def test_import():
    builtins.__import__ = hook

def test_import_repaired():
    assert builtins.__import__ is not hook

def test_trace():
    sys.settrace(hook)

def test_profile():
    sys.setprofile(hook)

def test_profile_repaired():
    assert sys.getprofile() is None

def test_thread_trace():
    threading.settrace(hook)

def test_warnoptions():
    sys.warnoptions.append("ignore")

def test_excepthook():
    sys.excepthook = hook

def test_threading_excepthook():
    threading.excepthook = hook

def test_unraisablehook():
    sys.unraisablehook = hook

def test_unraisablehook_repaired():
    assert sys.unraisablehook is not hook

def test_recursionlimit():
    sys.setrecursionlimit(sys.getrecursionlimit() + 7)

def test_socket_timeout():
    socket.setdefaulttimeout(3.5)

def test_socket_timeout_repaired():
    assert socket.getdefaulttimeout() is None

def test_umask():
    os.umask(0o077)

def test_umask_repaired():
    mask = os.umask(0o022)
    os.umask(mask)
    assert mask == 0o022

def test_tzname():
    os.environ["TZ"] = "UTC0LEAK"
    time.tzset()

def test_tzname_repaired():
    assert "LEAK" not in time.tzname

def test_faulthandler():
    import faulthandler
    faulthandler.disable()

def test_atexit():
    atexit.register(hook)

def test_logging_disable():
    logging.disable(logging.CRITICAL)

def test_logging_disable_repaired():
    assert logging.root.manager.disable == 0

def test_policy():
    asyncio.set_event_loop_policy(Policy())

def test_policy_repaired():
    assert type(asyncio.get_event_loop_policy()) is not Policy

def test_archive_format():
    shutil.register_archive_format("leaked", hook)

def test_unpack_format():
    shutil.register_unpack_format("leaked", [".leaked"], hook)

def test_formats_repaired():
    assert "leaked" not in dict(shutil.get_archive_formats())
    assert "leaked" not in [name for name, *_ in shutil.get_unpack_formats()]

def test_sysconfig():
    sysconfig.get_config_vars()["LEAKED"] = "1"

def test_locale():
    locale.setlocale(locale.LC_ALL, OTHER_LOCALE)

def test_locale_repaired():
    assert locale.setlocale(locale.LC_CTYPE) != OTHER_LOCALE
"""

REPORTED = (
    "env: sys.argv changed",
    "+ '--leaked'",
    "env: sys.path_hooks changed",
    "+ <function hook at",
    "env: sys.meta_path changed",
    "+ <test_it.Finder object at",
    "env: builtins.__import__: builtins.__import__ → test_it.hook",
    "env: sys.gettrace(): None → test_it.hook",
    "env: sys.getprofile(): None → test_it.hook",
    "env: threading.settrace(): None → test_it.hook",
    "env: sys.warnoptions changed",
    "+ 'ignore'",
    "env: sys.excepthook: sys.excepthook → test_it.hook",
    "env: threading.excepthook: ",
    "env: sys.unraisablehook: ",
    "env: sys.getrecursionlimit(): ",
    "env: socket.getdefaulttimeout(): None → 3.5",
    "env: os.umask: 18 → 63",
    "env: time.tzname: ",
    "env: faulthandler.is_enabled(): True → False",
    "env: atexit handlers: ",
    "registered: test_it.hook",
    "env: logging.disable: 0 → 50",
    "env: asyncio event loop policy: ",
    "env: shutil archive formats changed",
    "+ 'leaked'",
    "env: shutil unpack formats changed",
    "env: sysconfig config vars: a dict of ",
    "env: locale: ",
)


def test_each_interpreter_setting_left_changed_is_reported_and_strict_mode_repairs_it(
    run: Run,
) -> None:
    result = run(LEAKS, "--resource-strict", "-p", "no:randomly")
    leaking = LEAKS.count("\ndef test_") - LEAKS.count("_repaired():")
    result.assert_outcomes(passed=LEAKS.count("\ndef test_"), errors=leaking)
    assert_lines(result, *REPORTED)
    assert "teardown of test_" + "argv_repaired" not in result.stdout.str()
    for line in result.outlines:
        assert not ("ERROR at teardown of" in line and "_repaired" in line), line


def test_std_streams_replaced_outside_pytest_capture(run: Run) -> None:
    result = run(
        """
import io, sys

def test_stdout():
    sys.stdout = io.StringIO()

def test_stdout_repaired():
    assert not isinstance(sys.stdout, io.StringIO)

def test_captured_replacement_is_undone_by_pytest(capsys):
    sys.stderr = io.StringIO()
""",
        "--resource-strict",
        "-p",
        "no:randomly",
        "-s",
    )
    result.assert_outcomes(passed=3, errors=1)
    assert_lines(result, "env: sys.stdout: <_io.TextIOWrapper name='<stdout>'", "→ <_io.StringIO")


def test_settings_restored_or_monkeypatched_are_clean(run: Run) -> None:
    result = run(
        """
import asyncio, logging, os, shutil, socket, sys, threading

def hook(*args):
    return None

def test_monkeypatched(monkeypatch):
    monkeypatch.setattr(sys, "excepthook", hook)
    monkeypatch.setattr(threading, "excepthook", hook)
    monkeypatch.setattr(sys, "argv", ["x"])
    monkeypatch.setattr(sys, "meta_path", [])
    monkeypatch.setattr("builtins.__import__", hook)

def test_restored():
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(old + 1)
    sys.setrecursionlimit(old)
    socket.setdefaulttimeout(2)
    socket.setdefaulttimeout(None)
    mask = os.umask(0o077)
    os.umask(mask)
    logging.disable(logging.INFO)
    logging.disable(logging.NOTSET)
    shutil.register_archive_format("tmp", hook)
    shutil.unregister_archive_format("tmp")

def test_first_use_of_lazy_defaults():
    asyncio.get_event_loop_policy()
    import sysconfig, weakref
    sysconfig.get_config_vars()
    weakref.finalize(hook, hook)

def test_import_that_registers_an_exit_hook():
    import multiprocessing.util  # registers its exit function on import
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=4)


def test_mock_patches_left_active_are_reported_and_stopped_in_strict_mode(run: Run) -> None:
    result = run(
        """
import os
from unittest import mock

CONFIG = {}

class Service:
    def call(self):
        return "real"

def test_patch():
    mock.patch("os.getcwd", return_value="/mocked").start()

def test_patch_object():
    mock.patch.object(Service, "call", return_value="fake").start()

def test_patch_dict():
    mock.patch.dict(CONFIG, {"debug": True}).start()

def test_patch_multiple():
    mock.patch.multiple("os", getpid=mock.DEFAULT, getppid=mock.DEFAULT).start()

def test_stopped_by_strict_mode():
    assert os.getcwd() != "/mocked"
    assert Service().call() == "real"
    assert CONFIG == {}
    assert not isinstance(os.getpid, mock.Mock)
""",
        "--resource-strict",
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=5, errors=4)
    assert "env: cwd" not in result.stdout.str()  # our own reads are not mocked
    assert_lines(
        result,
        "env: unittest.mock patch of os.getcwd still active",
        "env: unittest.mock patch of test_it.Service.call still active",
        "env: unittest.mock patch of dict {'debug': True} still active",
        "env: unittest.mock patch of os.getpid, os.getppid still active",
        "started and never stopped",
    )


def test_mock_patches_undone_are_clean(run: Run) -> None:
    result = run(
        """
import os
from unittest import mock

def test_context_manager():
    with mock.patch("os.getcwd"):
        pass

def test_stopped():
    patcher = mock.patch.object(os, "getpid")
    patcher.start()
    patcher.stop()

def test_stopall():
    mock.patch.dict(os.environ, {"X": "1"}).start()
    mock.patch.stopall()

def test_mocker(mocker):
    mocker.patch("os.getcwd", return_value="/mocked")
    mocker.patch.object(os, "getpid")
    mocker.patch.dict(os.environ, {"Y": "1"})

def test_monkeypatch(monkeypatch):
    monkeypatch.setattr(os, "getcwd", lambda: "/mocked")
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=5)


def test_a_change_back_to_the_session_start_is_a_repair_not_a_leak(run: Run) -> None:
    result = run(
        """
import os, signal

def test_leaks():
    signal.signal(signal.SIGUSR1, lambda *a: None)
    os.environ["LEAKED_BY_FIRST"] = "1"

def test_repairs():
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    del os.environ["LEAKED_BY_FIRST"]
""",
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=2)
    assert_lines(result, "env: signal handler for SIGUSR1: SIG_DFL →")
    assert "test_it.py::test_repairs" not in result.stdout.str().split("resource leaks")[-1]


WARNINGS = """
import warnings

def show(*args, **kwargs):
    pass

def test_filter_without_catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)

def test_showwarning_replaced():
    warnings.showwarning = show
"""


def test_warnings_state_is_no_leak_while_pytest_resets_it(run: Run) -> None:
    result = run(WARNINGS, "--resource-strict")
    result.assert_outcomes(passed=2)


def test_warnings_state_is_a_leak_without_pytest_warnings_plugin(run: Run) -> None:
    result = run(WARNINGS, "--resource-strict", "-p", "no:warnings")
    result.assert_outcomes(passed=2, errors=2)
    assert_lines(
        result,
        "env: warnings filters changed",
        "0: ('ignore', None, <class 'DeprecationWarning'>, None, 0)",
        "env: warnings.showwarning: warnings.showwarning → test_it.show",
    )
