"""Pure logic of attach, health checks and restart policies (no processes)."""

from __future__ import annotations

import struct
from types import SimpleNamespace

import pytest

from declarun.daemon.containers.hooks.attach_clients import (
    DEFAULT_DETACH_KEYS,
    DetachScanner,
    frame,
    parse_detach_keys,
)
from declarun.daemon.containers.hooks.exec_instances import (
    ExecConfig,
    ExecInstance,
    ExecManager,
    start_failure,
)
from declarun.daemon.containers.hooks.health import go_duration, probe_command
from declarun.daemon.containers.hooks.restart import (
    BACKOFF_START,
    MAX_BACKOFF,
    next_delay,
    should_restart,
)
from declarun.daemon.containers.runtime.exec_session import ExecStartError
from declarun.errdefs import Conflict, InvalidArgument


def test_frame_header_is_dockers() -> None:
    data = frame(2, b"oops\n")
    assert data[:8] == struct.pack(">BxxxL", 2, 5)
    assert data[8:] == b"oops\n"


def test_detach_keys_parse_like_docker() -> None:
    assert parse_detach_keys("ctrl-p,ctrl-q") == DEFAULT_DETACH_KEYS
    assert parse_detach_keys("ctrl-a,x") == b"\x01x"
    assert parse_detach_keys("ctrl-[") == b"\x1b"
    with pytest.raises(ValueError, match="Invalid detach keys"):
        parse_detach_keys("ctrl-1")
    with pytest.raises(ValueError):
        parse_detach_keys("alt-x")


def test_detach_scanner_holds_partial_matches() -> None:
    scanner = DetachScanner(b"\x10\x11")
    assert scanner.feed(b"ab\x10") == (b"ab", False)
    # The held ctrl-p is released when the next byte breaks the match.
    assert scanner.feed(b"c") == (b"\x10c", False)
    assert scanner.feed(b"x\x10") == (b"x", False)
    assert scanner.feed(b"\x11rest") == (b"", True)
    assert DetachScanner(b"\x10\x11").feed(b"\x10\x10\x11") == (b"\x10", True)


def test_exec_config_validation() -> None:
    config = ExecConfig.from_api({"Cmd": ["ls", "-l"], "AttachStdout": True, "Tty": True})
    assert config.cmd == ("ls", "-l") and config.tty and config.attach_stdout
    with pytest.raises(InvalidArgument, match="No exec command specified"):
        ExecConfig.from_api({"Cmd": []})
    with pytest.raises(InvalidArgument, match="absolute path"):
        ExecConfig.from_api({"Cmd": ["ls"], "WorkingDir": "rel"})


def test_exec_start_failure_codes() -> None:
    missing = start_failure(
        ExecStartError(
            'cannot exec in abc: exec failed: unable to start container process: exec: "nope": '
            "executable file not found in $PATH"
        )
    )
    assert missing.exit_code == 127
    assert str(missing) == (
        'OCI runtime exec failed: exec failed: unable to start container process: exec: "nope": '
        "executable file not found in $PATH: unknown"
    )
    denied = start_failure(ExecStartError("cannot exec in abc: permission denied"))
    assert denied.exit_code == 126


def test_probe_commands() -> None:
    assert probe_command(("CMD", "test", "-f", "/x")) == ("test", "-f", "/x")
    assert probe_command(("CMD-SHELL", "exit 1")) == ("/bin/sh", "-c", "exit 1")
    assert probe_command(("NONE",)) is None
    assert probe_command(()) is None


def test_go_durations() -> None:
    assert go_duration(30 * 10**9) == "30s"
    assert go_duration(1_500_000_000) == "1.5s"
    assert go_duration(500_000_000) == "500ms"
    assert go_duration(90 * 10**9) == "1m30s"


def test_restart_decisions() -> None:
    assert should_restart("always", 0, 0, 5, False)
    assert not should_restart("always", 0, 0, 0, True)
    assert should_restart("on-failure", 2, 1, 1, False)
    assert not should_restart("on-failure", 2, 1, 2, False)
    assert not should_restart("on-failure", 0, 0, 0, False)
    assert should_restart("on-failure", 0, 3, 100, False)
    assert not should_restart("no", 0, 1, 0, False)


def test_backoff_doubles_caps_and_resets() -> None:
    delay = 0.0
    seen = []
    for _ in range(12):
        delay = next_delay(delay, ran_for=0.5)
        seen.append(delay)
    assert seen[0] == BACKOFF_START and seen[1] == 2 * BACKOFF_START
    assert max(seen) == MAX_BACKOFF
    assert next_delay(MAX_BACKOFF, ran_for=10.0) == BACKOFF_START


def test_an_exec_starts_once_in_a_running_container() -> None:
    execs = ExecManager()
    running = SimpleNamespace(id="c1", state=SimpleNamespace(running=True))
    stopped = SimpleNamespace(id="c1", state=SimpleNamespace(running=False))
    instance = ExecInstance("e1", "c1", ExecConfig(cmd=("true",)))
    execs.check_startable(running, instance)
    with pytest.raises(Conflict, match="Container c1 is not running"):
        execs.check_startable(stopped, instance)
    instance.started, instance.running = True, True
    with pytest.raises(Conflict, match="Exec command e1 is already running"):
        execs.check_startable(running, instance)
    instance.running = False
    with pytest.raises(Conflict, match="Exec command e1 has already run"):
        execs.check_startable(running, instance)
