"""Running an extra process in a running container (``docker exec``, health checks) via conmon.

Each exec session gets its own conmon (``--exec --exec-attach``) and a directory holding the
process spec, conmon's ``attach`` socket, ``ctl``/``winsz`` fifos, pidfiles and the exit
file. The sequence, which loses no output even from a command that exits at once:

1. conmon starts and reads the start pipe once (released immediately), daemonizes, binds
   the attach socket and reports ``{"data": 0}`` on the attach pipe;
2. we connect to the attach socket, then write the start pipe again: only now does conmon
   run ``runc exec --detach --process process.json``;
3. the sync pipe reports ``{"data": <host pid>}`` (or ``{"data": -1, "message": ...}`` when
   the runtime refused: no such executable, container not running...), later
   ``{"data": <exit status>}``. conmon closes attach connections before that last line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from declarun.daemon.containers.runtime.attach_socket import STDOUT, AttachStream, resize_terminal
from declarun.daemon.containers.runtime.oci import OciRuntime
from declarun.daemon.containers.runtime.syncpipe import (
    CONMON,
    ConmonPipes,
    MonitorError,
    spawn_conmon,
)

__all__ = [
    "ExecResult",
    "ExecSession",
    "ExecStartError",
    "exec_process_spec",
    "run_exec",
    "start_exec",
]

START_TIMEOUT = 60.0


class ExecStartError(MonitorError):
    """The runtime could not start the exec'd process; ``message`` is its reason."""


@dataclass(frozen=True)
class ExecResult:
    """A finished exec: its exit status and everything it printed."""

    exit_code: int
    stdout: bytes
    stderr: bytes


def exec_process_spec(
    base: Mapping[str, Any],
    args: Sequence[str],
    *,
    env: Sequence[str] | None = None,
    cwd: str | None = None,
    user: Mapping[str, Any] | None = None,
    terminal: bool = False,
) -> dict[str, Any]:
    """An OCI ``process`` for an exec, from the container's own ``process`` in config.json.

    Capabilities, rlimits, ``noNewPrivileges`` and the like are the container's (``runc exec
    --process`` replaces the process wholesale, so nothing may be left out); ``env`` entries
    are added to the container's (a later ``KEY=`` wins).
    """
    process: dict[str, Any] = json.loads(json.dumps(dict(base)))
    process["args"] = list(args)
    process["terminal"] = terminal
    process.pop("consoleSize", None)
    if env:
        merged: dict[str, str] = {}
        for item in [*process.get("env", []), *env]:
            merged[item.split("=", 1)[0]] = item
        process["env"] = list(merged.values())
    if cwd:
        process["cwd"] = cwd
    if user is not None:
        process["user"] = dict(user)
    return process


class ExecSession:
    """A started exec: read/write its stdio through ``attach``; ``wait()`` for its status."""

    def __init__(self, exec_id: str, pid: int, directory: Path, attach: AttachStream,
                 pipes: ConmonPipes) -> None:  # fmt: skip
        self.exec_id = exec_id
        self.pid = pid
        self.directory = directory
        self.attach = attach
        self._pipes = pipes
        self._exit_code: int | None = None

    async def wait(self) -> int:
        """The exit status (``128 + N`` when killed by signal N)."""
        if self._exit_code is None:
            message = await self._pipes.sync.read()
            if message is None:
                raise MonitorError(f"exec {self.exec_id}: conmon ended without an exit status")
            self._exit_code = message.data
        return self._exit_code

    def resize(self, width: int, height: int) -> None:
        """Resize the exec's terminal (``terminal=True`` sessions)."""
        resize_terminal(self.directory / "ctl", width, height)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the exec'd process (a health check that timed out)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def close(self) -> None:
        """Release the connection and pipes and remove the session directory."""
        self.attach.close()
        self._pipes.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def _exec_args(runtime: OciRuntime, cid: str, exec_id: str, directory: Path, *,
               terminal: bool, stdin: bool) -> list[str]:  # fmt: skip
    args = [
        "--api-version", "1",
        "-c", cid,
        "-u", exec_id,
        "-n", f"{cid}.{exec_id}",
        "-r", runtime.binary,
        "-b", str(directory),
        "-p", str(directory / "exec.pid"),
        "-P", str(directory / "conmon.pid"),
        "-l", "none",
        "--exit-dir", str(directory),
        "--full-attach",
        "--socket-dir-path", str(directory),
        "--exec",
        "--exec-process-spec", str(directory / "process.json"),
        "--exec-attach",
    ]  # fmt: skip
    for arg in runtime.global_args():
        args += ["--runtime-arg", arg]
    if terminal:
        args.append("-t")
    if stdin:
        args.append("-i")
    return args


async def start_exec(
    runtime: OciRuntime,
    cid: str,
    directory: Path,
    process: Mapping[str, Any],
    *,
    exec_id: str,
    stdin: bool = False,
    conmon: str = CONMON,
    timeout: float = START_TIMEOUT,
) -> ExecSession:
    """Start ``process`` (an OCI process, see :func:`exec_process_spec`) in container ``cid``.

    ``directory`` must not be in use by another session; it is created and, on failure or
    :meth:`ExecSession.close`, removed. Raises :class:`ExecStartError` with the runtime's
    reason when the process cannot start.
    """
    terminal = bool(process.get("terminal", False))
    directory.mkdir(parents=True, exist_ok=False, mode=0o700)
    (directory / "process.json").write_text(json.dumps(dict(process)))
    args = _exec_args(runtime, cid, exec_id, directory, terminal=terminal, stdin=stdin)
    attach: AttachStream | None = None
    pipes: ConmonPipes | None = None
    try:
        pipes = await spawn_conmon(args, cwd=directory, conmon=conmon, start_pipe=True,
                                   attach_pipe=True)  # fmt: skip
        assert pipes.attach is not None
        ready = await asyncio.wait_for(pipes.attach.read(), timeout)
        if ready is None or ready.data != 0:
            failed = await asyncio.wait_for(pipes.sync.read(), timeout)
            why = failed.message if failed is not None and failed.message else "no message"
            raise ExecStartError(f"cannot exec in {cid}: {why}")
        attach = await AttachStream.connect(directory / "attach")
        pipes.release_start()
        started = await asyncio.wait_for(pipes.sync.read(), timeout)
        if started is None or started.data <= 0:
            why = started.message if started is not None and started.message else "no message"
            raise ExecStartError(f"cannot exec in {cid}: {why}")
    except BaseException:
        if attach is not None:
            attach.close()
        if pipes is not None:
            pipes.close()
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return ExecSession(exec_id, started.data, directory, attach, pipes)


async def run_exec(
    runtime: OciRuntime,
    cid: str,
    directory: Path,
    process: Mapping[str, Any],
    *,
    exec_id: str,
    input: bytes | None = None,
    timeout: float | None = None,
    conmon: str = CONMON,
) -> ExecResult:
    """Run an exec to completion, collecting its output (health checks, tests).

    With ``timeout`` the process is SIGKILLed when it runs longer, and :class:`TimeoutError`
    is raised after it has been reaped.
    """
    session = await start_exec(runtime, cid, directory, process, exec_id=exec_id,
                               stdin=input is not None, conmon=conmon)  # fmt: skip
    try:
        if input is not None:
            await session.attach.write(input)
        session.attach.close_stdin()
        out: list[bytes] = []
        err: list[bytes] = []

        async def collect() -> int:
            while (item := await session.attach.read()) is not None:
                (out if item[0] == STDOUT else err).append(item[1])
            return await session.wait()

        try:
            code = await asyncio.wait_for(collect(), timeout)
        except TimeoutError:
            session.kill()
            await session.wait()
            raise
        return ExecResult(code, b"".join(out), b"".join(err))
    finally:
        session.close()
