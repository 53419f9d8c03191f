from __future__ import annotations

from pytester_run import Run, assert_lines


def test_every_kind_of_global_state_change_is_reported(run: Run) -> None:
    result = run(
        """
import logging, os, signal, sys

def test_environ_added():
    os.environ["LEAKED_ADDED"] = "1"

def test_environ_removed_and_changed():
    del os.environ["HOME"]
    os.environ["PATH"] = "/nowhere"

def test_cwd(tmp_path):
    os.chdir(tmp_path)

def test_sys_path():
    sys.path.insert(0, "/leaked/path")

def test_signal():
    signal.signal(signal.SIGUSR1, lambda *a: None)

def test_logging_handler():
    logging.getLogger().addHandler(logging.NullHandler())
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=6, errors=6)
    assert_lines(
        result,
        "env: os.environ['LEAKED_ADDED'] added: '1'",
        "env: os.environ['HOME'] removed (was ",
        "→ '/nowhere'",
        "test_cwd0'",
        "env: sys.path changed",
        "+ '/leaked/path'",
        "env: signal handler for SIGUSR1: SIG_DFL → test_signal.<locals>.<lambda>",
        "env: root logger handlers changed",
        "+ <NullHandler (NOTSET)>",
    )


def test_strict_mode_restores_leaked_state_so_later_tests_are_clean(run: Run) -> None:
    result = run(
        """
import os, sys

def test_leaks(tmp_path):
    os.environ["LEAKED"] = "1"
    os.chdir(tmp_path)
    sys.path.append("/leaked")

def test_state_was_restored():
    assert "LEAKED" not in os.environ
    assert "/leaked" not in sys.path
    assert not os.getcwd().endswith("test_leaks0")
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=2, errors=1)


def test_restored_changes_are_clean(run: Run) -> None:
    result = run(
        """
import logging, os, signal, sys, warnings
import pytest

def test_monkeypatch(monkeypatch, tmp_path):
    monkeypatch.setenv("X", "1")
    monkeypatch.delenv("HOME")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))

def test_catch_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")

def test_signal_restored():
    old = signal.signal(signal.SIGUSR2, lambda *a: None)
    signal.signal(signal.SIGUSR2, old)

def test_caplog(caplog):
    logging.getLogger().warning("hello")
    assert "hello" in caplog.text

@pytest.mark.filterwarnings("ignore::UserWarning")
def test_filterwarnings_marker():
    pass
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=5)


def test_ignore_env_ini(run: Run) -> None:
    result = run(
        """
import os

def test_sets_cache_var():
    os.environ["MYAPP_CACHE_DIR"] = "/tmp"
""",
        "--resource-strict",
        ini="resource_ignore_env = MYAPP_CACHE_*\n",
    )
    result.assert_outcomes(passed=1)


def test_signal_handler_changes_are_seen_through_every_route(run: Run) -> None:
    result = run(
        """
import _signal, asyncio, signal

def test_through_signal_module():
    signal.signal(signal.SIGUSR1, lambda *a: None)

def test_restored_by_strict_mode_so_this_one_is_clean():
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL

def test_through_the_c_module():
    _signal.signal(signal.SIGUSR2, _signal.SIG_IGN)

def test_through_asyncio():
    loop = asyncio.new_event_loop()
    loop.add_signal_handler(signal.SIGWINCH, lambda: None)
    loop._signal_handlers.clear()  # forgotten, so close() leaves the handler installed
    loop.close()

def test_untouched():
    pass
""",
        "--resource-strict",
    )
    result.assert_outcomes(passed=5, errors=3)
    assert_lines(
        result,
        "env: signal handler for SIGUSR1: SIG_DFL → test_through_signal_module.<locals>",
        "env: signal handler for SIGUSR2: SIG_DFL → SIG_IGN",
        "env: signal handler for SIGWINCH: SIG_DFL → _sighandler_noop",
    )
    for clean in ("restored_by_strict", "untouched"):
        assert f"ERROR at teardown of test_{clean}" not in result.stdout.str()


NAMED_LOGGERS = """
import logging

def test_handler():
    logging.getLogger("app.db").addHandler(logging.StreamHandler())

def test_level():
    logging.getLogger("app.db").setLevel(logging.DEBUG)

def test_handler_and_level_repaired():
    assert logging.getLogger("app.db").level == logging.NOTSET
    assert not logging.getLogger("app.db").handlers

def test_caplog(caplog):
    caplog.set_level(logging.INFO, logger="app.other")

def test_added_and_removed():
    log, handler = logging.getLogger("app.x"), logging.StreamHandler()
    log.addHandler(handler)
    log.removeHandler(handler)

def test_null_handler():
    logging.getLogger("lib").addHandler(logging.NullHandler())
"""


def test_named_loggers_levels_and_handlers_left_changed_are_reported_and_repaired(
    run: Run,
) -> None:
    result = run(NAMED_LOGGERS, "--resource-strict", "-p", "no:randomly")
    result.assert_outcomes(passed=6, errors=2)
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_handler*", "*ERROR at teardown of test_level*"]
    )
    assert_lines(
        result,
        "env: logger 'app.db' changed",
        "+ <StreamHandler ",
        "level: NOTSET → DEBUG",
    )
    assert "'app.other'" not in result.stdout.str()
    assert "'app.x'" not in result.stdout.str()
    assert "'lib'" not in result.stdout.str()
