"""Containers under the real conmon and runc: logs, exit codes, surviving the daemon,
recovery, attach, terminals, exec, stop with a grace period."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from declarun.daemon.containers.lifecycle.restore import UNKNOWN_EXIT_CODE, conmon_alive, recover
from declarun.daemon.containers.runtime.attach_socket import (
    STDERR,
    STDOUT,
    AttachStream,
    resize_terminal,
)
from declarun.daemon.containers.runtime.exec_session import (
    ExecStartError,
    exec_process_spec,
    run_exec,
    start_exec,
)
from declarun.daemon.containers.runtime.exitwatch import (
    ExitWatcher,
    read_exit_file,
    wait_for_exit_file,
)
from declarun.daemon.containers.runtime.logfile import LogRecord, read_log
from declarun.daemon.containers.runtime.monitor import (
    MonitorError,
    MonitorLayout,
    create_container,
    start_container,
    stop_container,
)
from tests.daemon.containers.conmon_support import (
    CONMON,
    Env,
    monitor_env,
    needs_conmon,
    processes_mentioning,
    run,
)

pytestmark = [needs_conmon, pytest.mark.root]
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with monitor_env(tmp_path) as e:
        yield e


async def logs(layout: MonitorLayout) -> list[LogRecord]:
    return [r async for r in read_log(layout.log_file)]


def text_of(records: list[LogRecord], stream: int = STDOUT) -> bytes:
    return b"".join(r.data for r in records if r.stream == stream)


async def run_to_exit(env: Env, args: list[str]) -> tuple[int, list[LogRecord], MonitorLayout]:
    cid, layout = env.bundle(args)
    await create_container(env.runtime, layout, cid)
    await start_container(env.runtime, cid)
    status = await wait_for_exit_file(layout.exit_file(cid), 60)
    await env.runtime.delete(cid)
    return status.code, await logs(layout), layout


def test_echo_goes_to_the_log_and_exit_code_is_zero(env: Env) -> None:
    code, records, _ = run(run_to_exit(env, ["echo", "hi"]))
    assert code == 0
    assert [(r.stream, r.data, r.partial) for r in records] == [(STDOUT, b"hi\n", False)]


def test_exit_code_streams_and_partial_lines(env: Env) -> None:
    script = "echo out; echo err >&2; printf no-newline; exit 3"
    code, records, _ = run(run_to_exit(env, ["sh", "-c", script]))
    assert code == 3
    assert text_of(records) == b"out\nno-newline"
    assert text_of(records, STDERR) == b"err\n"
    assert [r.partial for r in records if r.data == b"no-newline"] == [True]


def test_death_by_signal_is_128_plus_signal(env: Env) -> None:
    cid, layout = env.bundle(["sleep", "1000"])

    async def go() -> int:
        await create_container(env.runtime, layout, cid)
        await start_container(env.runtime, cid)
        await env.runtime.kill(cid, "SIGKILL")
        code = (await wait_for_exit_file(layout.exit_file(cid), 60)).code
        await env.runtime.delete(cid)
        return code

    assert run(go()) == 128 + 9


def test_runtime_failure_comes_back_with_runcs_message(env: Env) -> None:
    cid, layout = env.bundle(["/no/such/program"])
    with pytest.raises(MonitorError) as raised:
        run(create_container(env.runtime, layout, cid))
    message = str(raised.value)
    assert "/no/such/program" in message and "no such file or directory" in message
    assert "level=error" not in message  # runc's log framing is stripped
    assert run(env.runtime.list_containers()) == []  # the half-created container is gone


def test_create_failure_raises_monitor_error(env: Env) -> None:
    cid, layout = env.bundle(["true"])
    config = json.loads((layout.bundle / "config.json").read_text())
    config["root"]["path"] = "no-such-rootfs"
    (layout.bundle / "config.json").write_text(json.dumps(config))
    with pytest.raises(MonitorError, match=r"no-such-rootfs|no such file"):
        run(create_container(env.runtime, layout, cid))
    assert run(env.runtime.list_containers()) == []


LAUNCHER = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from declarun.daemon.containers.runtime.monitor import MonitorLayout, create_container, start_container
    from declarun.daemon.containers.runtime.oci import OciRuntime

    async def main():
        root, bundle, cid = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
        runtime = OciRuntime.for_data_root(root, "runc", "/usr/sbin/runc")
        layout = MonitorLayout(bundle=bundle, exit_dir=root / "exits")
        created = await create_container(runtime, layout, cid)
        await start_container(runtime, cid)
        print(json.dumps({"pid": created.pid, "conmon_pid": created.conmon_pid}))

    asyncio.run(main())
    """
)


def launch_from_another_process(env: Env, cid: str, layout: MonitorLayout) -> dict[str, int]:
    """Create and start from a short-lived Python process that then exits, like a daemon."""
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(env.root), str(layout.bundle), cid],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    launched: dict[str, int] = json.loads(proc.stdout)
    return launched


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def test_container_outlives_the_process_that_launched_it(env: Env) -> None:
    cid, layout = env.bundle(["sleep", "1000"])
    launched = launch_from_another_process(env, cid, layout)
    # The launcher has exited; its conmon and container must not have gone with it.
    assert conmon_alive(launched["conmon_pid"], cid)
    assert parent_of(launched["conmon_pid"]) != os.getpid()
    state = run(env.runtime.state(cid))
    assert (state.status, state.pid) == ("running", launched["pid"])
    found = run(recover(env.runtime, layout, cid))
    assert (found.status, found.pid, found.conmon_pid, found.supervised) == (
        "running", launched["pid"], launched["conmon_pid"], True,
    )  # fmt: skip
    # sleep is pid 1 of its namespace: it ignores SIGTERM, so the grace period ends in SIGKILL.
    status = run(stop_container(env.runtime, layout, cid, timeout=0.5))
    assert status.code == 137
    run(env.runtime.delete(cid))


def test_exit_while_the_daemon_was_away_is_recovered(env: Env) -> None:
    script = "while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 7"
    cid, layout = env.bundle(["sh", "-c", script])
    launch_from_another_process(env, cid, layout)
    (layout.bundle / "rootfs" / "tmp" / "go").touch()
    # No daemon watches now; wait for the file conmon leaves, as a restarted daemon finds it.
    exit_file = layout.exit_file(cid)
    run(wait_for_exit_file(exit_file, 60))
    found = run(recover(env.runtime, layout, cid))
    assert found.status == "exited"
    assert found.exit is not None and found.exit.code == 7
    assert found.exit.finished_at is not None
    assert found.exit.finished_at == datetime.fromtimestamp(exit_file.stat().st_mtime, UTC)
    run(env.runtime.delete(cid))
    assert run(recover(env.runtime, layout, cid)).status == "exited"  # the file stays authority


def test_recover_without_conmon_or_runtime_state(env: Env) -> None:
    cid, layout = env.bundle(["sleep", "1000"])
    created = run(create_container(env.runtime, layout, cid))
    run(start_container(env.runtime, cid))
    os.kill(created.conmon_pid, 9)  # the monitor is lost: nobody will write an exit file
    while conmon_alive(created.conmon_pid, cid):
        run(asyncio.sleep(0.02))
    found = run(recover(env.runtime, layout, cid))
    assert (found.status, found.supervised) == ("running", False)
    run(env.runtime.kill(cid, 9, all=True))
    while run(env.runtime.state(cid)).status != "stopped":
        run(asyncio.sleep(0.02))
    found = run(recover(env.runtime, layout, cid))
    assert found.status == "exited" and found.exit is not None
    assert found.exit.code == UNKNOWN_EXIT_CODE
    run(env.runtime.delete(cid))
    assert run(recover(env.runtime, layout, cid)).status == "gone"


def test_exit_watcher_reports_past_and_future_exits(env: Env) -> None:
    async def go() -> tuple[int, int]:
        watcher = ExitWatcher(env.exit_dir)
        watcher.start()
        try:
            first, first_layout = env.bundle(["sh", "-c", "exit 4"])
            await create_container(env.runtime, first_layout, first)
            await start_container(env.runtime, first)
            code_first = (await watcher.wait(first)).code  # exits while we wait
            second, second_layout = env.bundle(["sh", "-c", "read x; exit 5"], name=None)
            await create_container(env.runtime, second_layout, second, stdin=True)
            await start_container(env.runtime, second)
            waiting = asyncio.ensure_future(watcher.wait(second))
            async with await AttachStream.connect(second_layout.attach_socket) as attach:
                await attach.write(b"go\n")
                code_second = (await waiting).code
            again = (await watcher.wait(first)).code  # an exit file already there
            assert again == code_first
            third, third_layout = env.bundle(["sleep", "1000"])
            await create_container(env.runtime, third_layout, third)
            await start_container(env.runtime, third)
            stopped = await stop_container(env.runtime, third_layout, third, timeout=0.2,
                                           watcher=watcher)  # fmt: skip
            assert stopped.code == 137
            await env.runtime.delete(third)
            for cid in (first, second):
                await env.runtime.delete(cid)
            return code_first, code_second
        finally:
            watcher.close()

    assert run(go()) == (4, 5)


async def read_all(attach: AttachStream) -> dict[int, bytes]:
    out: dict[int, bytes] = {STDOUT: b"", STDERR: b""}
    while (item := await attach.read()) is not None:
        out[item[0]] += item[1]
    return out


def test_attach_round_trip_through_cat(env: Env) -> None:
    cid, layout = env.bundle(["sh", "-c", "cat; echo done >&2"])

    async def go() -> dict[int, bytes]:
        await create_container(env.runtime, layout, cid, stdin=True)
        attach = await AttachStream.connect(layout.attach_socket)
        await start_container(env.runtime, cid)
        big = b"x" * 100_000 + b"\n"
        await attach.write(b"hello through conmon\n" + big)
        attach.close_stdin()  # cat sees EOF
        out = await read_all(attach)
        attach.close()
        assert (await wait_for_exit_file(layout.exit_file(cid), 60)).code == 0
        await env.runtime.delete(cid)
        return out

    out = run(go())
    assert out[STDOUT] == b"hello through conmon\n" + b"x" * 100_000 + b"\n"
    assert out[STDERR] == b"done\n"
    assert text_of(run(logs(layout))).startswith(b"hello through conmon\n")


def test_terminal_mode_prints_output_and_resizes(env: Env) -> None:
    cid, layout = env.bundle(["sh", "-c", "read x; stty size; tty"], terminal=True)

    async def go() -> bytes:
        await create_container(env.runtime, layout, cid, terminal=True, stdin=True)
        attach = await AttachStream.connect(layout.attach_socket)
        await start_container(env.runtime, cid)
        resize_terminal(layout.ctl_fifo, 123, 45)
        await attach.write(b"go\r")
        out = await read_all(attach)
        attach.close()
        assert (await wait_for_exit_file(layout.exit_file(cid), 60)).code == 0
        await env.runtime.delete(cid)
        return out[STDOUT] + out[STDERR]

    output = run(go())
    assert b"45 123" in output
    assert b"/dev/pts/" in output
    assert b"\r\n" in output  # a terminal's line endings


def test_exec_into_a_running_container(env: Env, tmp_path: Path) -> None:
    cid, layout = env.bundle(["sleep", "1000"])
    base = json.loads((layout.bundle / "config.json").read_text())["process"]

    async def go() -> None:
        await create_container(env.runtime, layout, cid)
        await start_container(env.runtime, cid)
        echo = exec_process_spec(base, ["sh", "-c", "echo from-exec; echo e >&2; exit 5"])
        result = await run_exec(env.runtime, cid, tmp_path / "x1", echo, exec_id="x1")
        assert (result.exit_code, result.stdout, result.stderr) == (5, b"from-exec\n", b"e\n")
        cat = exec_process_spec(base, ["cat"], env=["A=1"])
        result = await run_exec(env.runtime, cid, tmp_path / "x2", cat, exec_id="x2",
                                input=b"piped\n")  # fmt: skip
        assert (result.exit_code, result.stdout) == (0, b"piped\n")
        tty = exec_process_spec(base, ["sh", "-c", "tty; echo $A"], env=["A=fromenv"],
                                terminal=True)  # fmt: skip
        session = await start_exec(env.runtime, cid, tmp_path / "x3", tty, exec_id="x3")
        out = await read_all(session.attach)
        assert await session.wait() == 0
        session.close()
        assert b"/dev/pts/" in out[STDOUT] and b"fromenv\r\n" in out[STDOUT]
        assert not (tmp_path / "x3").exists()
        missing = exec_process_spec(base, ["/no/such/binary"])
        with pytest.raises(ExecStartError, match="no such file"):
            await run_exec(env.runtime, cid, tmp_path / "x4", missing, exec_id="x4")
        assert not (tmp_path / "x4").exists()
        slow = exec_process_spec(base, ["sleep", "1000"])
        with pytest.raises(TimeoutError):
            await run_exec(env.runtime, cid, tmp_path / "x5", slow, exec_id="x5", timeout=0.3)
        assert (await env.runtime.state(cid)).status == "running"  # the container lives on
        assert (await stop_container(env.runtime, layout, cid, timeout=0)).code == 137
        await env.runtime.delete(cid)

    run(go())


def test_an_exec_cancelled_while_conmon_starts_leaves_no_conmon(env: Env, tmp_path: Path) -> None:
    # A health check cancelled by a removal used to be cancelled inside spawn_conmon: its
    # pipes were never closed, so the exec's conmon waited on its start pipe for ever.
    cid, layout = env.bundle(["sleep", "1000"])
    base = json.loads((layout.bundle / "config.json").read_text())["process"]
    slow_conmon = tmp_path / "slow-conmon"
    slow_conmon.write_text(f'#!/bin/sh\nsleep 0.5\nexec {CONMON} "$@"\n')
    slow_conmon.chmod(0o755)

    async def go() -> list[tuple[int, str]]:
        await create_container(env.runtime, layout, cid)
        await start_container(env.runtime, cid)
        probe = exec_process_spec(base, ["true"])
        starting = start_exec(env.runtime, cid, tmp_path / "x6", probe,
                              exec_id="cancelled-x6", conmon=str(slow_conmon))  # fmt: skip
        task = asyncio.create_task(starting)
        await asyncio.sleep(0.2)  # the wrapper still sleeps: spawn_conmon waits for it
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        left = processes_mentioning("-u cancelled-x6")
        for _ in range(150):
            left = processes_mentioning("-u cancelled-x6")
            if not left:
                break
            await asyncio.sleep(0.1)
        assert (await stop_container(env.runtime, layout, cid, timeout=0)).code == 137
        await env.runtime.delete(cid)
        return left

    assert run(go()) == []


def test_stop_sends_the_stop_signal_first(env: Env) -> None:
    script = "trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.05; done"
    cid, layout = env.bundle(["sh", "-c", script])

    async def go() -> int:
        await create_container(env.runtime, layout, cid)
        await start_container(env.runtime, cid)
        async for record in read_log(layout.log_file, follow=True):
            if record.data == b"ready\n":
                break
        status = await stop_container(env.runtime, layout, cid, timeout=60)
        again = await stop_container(env.runtime, layout, cid, timeout=60)  # already stopped
        assert again == status
        await env.runtime.delete(cid)
        return status.code

    assert run(go()) == 42
    assert b"got-term\n" in text_of(run(logs(layout)))


def test_follow_logs_until_the_container_exits(env: Env) -> None:
    script = "for i in 1 2 3 4 5; do echo line$i; sleep 0.05; done; printf tail"
    cid, layout = env.bundle(["sh", "-c", script])

    async def go() -> list[bytes]:
        watcher = ExitWatcher(env.exit_dir)
        watcher.start()
        stopped = asyncio.Event()
        try:
            await create_container(env.runtime, layout, cid)
            followed: list[bytes] = []

            async def follow() -> None:
                async for record in read_log(layout.log_file, follow=True, stopped=stopped):
                    followed.append(record.data)

            task = asyncio.ensure_future(follow())
            await start_container(env.runtime, cid)
            await watcher.wait(cid)
            stopped.set()
            await task
            await env.runtime.delete(cid)
            return followed
        finally:
            watcher.close()

    assert run(go()) == [b"line1\n", b"line2\n", b"line3\n", b"line4\n", b"line5\n", b"tail"]
    tail = run(_collect(read_log(layout.log_file, tail=2)))
    assert [r.data for r in tail] == [b"line5\n", b"tail"]


async def _collect(records: object) -> list[LogRecord]:
    return [r async for r in records]  # type: ignore[attr-defined]


def test_exit_file_is_read_as_status_and_time(tmp_path: Path) -> None:
    assert read_exit_file(tmp_path / "none") is None
    (tmp_path / "c").write_text("143")
    status = read_exit_file(tmp_path / "c")
    assert status is not None and status.code == 143 and status.finished_at is not None


def test_log_size_cap_keeps_the_newest_output(env: Env) -> None:
    cid, layout = env.bundle(["sh", "-c", "for i in $(seq 1 3000); do echo line$i; done"])

    async def go() -> list[LogRecord]:
        await create_container(env.runtime, layout, cid, log_size_max=4096)
        await start_container(env.runtime, cid)
        assert (await wait_for_exit_file(layout.exit_file(cid), 60)).code == 0
        await env.runtime.delete(cid)
        return await logs(layout)

    records = run(go())
    assert layout.log_file.stat().st_size <= 4096
    assert records and records[-1].data == b"line3000\n"
    assert b"line1\n" not in [r.data for r in records]
