"""Creating containers under ``conmon``, the monitor process that outlives the daemon.

declarund never keeps a Python process per container. Each container gets one ``conmon``
(Debian's ``/usr/bin/conmon``, 2.1.6 here) which runs ``runc create``, holds the container's
stdio, writes its log file and, when the container ends, its exit file. conmon double-forks
and calls ``setsid``: it is re-parented away from the daemon, so containers keep running when
the daemon stops or is SIGKILLed, and a restarted daemon finds them again
(:mod:`declarun.daemon.containers.lifecycle.restore`).

The conmon protocol, as verified against conmon 2.1.6 and runc 1.1.5 on this machine
------------------------------------------------------------------------------------

Arguments we pass (``conmon --help`` lists them all):

``--api-version 1``
    Sync-pipe messages say ``{"data": N}``; exec sessions report pid *and* exit code.
``-c CID`` / ``-u CUUID`` / ``-n NAME``
    Runtime container id; conmon's own id (the attach-socket directory name; for an exec,
    the exec id); a name for conmon's log lines.
``-r RUNTIME`` and ``--runtime-arg --root=DIR``
    The runtime binary and the arguments put before its subcommand (our state root).
``-b BUNDLE``
    The OCI bundle; conmon also creates its ``ctl`` and ``winsz`` fifos there and, with
    ``--full-attach``, the ``attach`` socket (no ``<socket-dir>/<cuuid>`` symlink to leak;
    conmon binds through ``/proc/self/fd/<dirfd>/attach`` so long paths are fine).
``-p FILE`` / ``-P FILE``
    The runtime writes the container's init pid to the first; conmon its own pid to the
    second (written by conmon's short-lived first process, before it exits).
``-l k8s-file:PATH`` (``--log-size-max BYTES``)
    Log lines ``<RFC3339Nano local time with offset> <stdout|stderr> <F|P> <bytes>``, see
    :mod:`logfile`. When the size cap is reached conmon *truncates* (writes ``PATH.tmp`` and
    renames it over PATH); there is no rotated history. ``-l none`` logs nothing.
``--exit-dir DIR``
    conmon writes ``DIR/<cid>`` with the exit status when the container ends (see
    :mod:`exitwatch`). ``--persist-dir DIR`` gets ``DIR/exit`` (same content) and
    ``DIR/oom`` after an OOM kill; conmon also creates ``oom`` in its working directory,
    so it runs with the bundle as cwd.
``-t`` / ``-i`` / ``--leave-stdin-open``
    A pseudo-terminal (conmon listens on a console socket in ``$TMPDIR`` and passes it as
    ``--console-socket``; the process spec must say ``terminal: true``); a stdin pipe; and
    whether stdin stays open when an attach client disconnects (Docker's ``StdinOnce``
    false). Without ``-i`` the container's stdin is ``/dev/null``.
``--exec --exec-process-spec FILE [--exec-attach]``
    An exec session (:mod:`exec_session`): ``runc exec --detach --process FILE``.

Pipes (``_OCI_SYNCPIPE``, ``_OCI_STARTPIPE``, ``_OCI_ATTACHPIPE``): see :mod:`syncpipe`.
After ``runc create`` conmon sends ``{"data": <pid>}``; on failure
``{"data": -1, "message": "<runtime stderr>"}`` (and nothing when the runtime printed
nothing). The container is then *created*, not running: ``runc start`` runs it.

Attach socket ``<bundle>/attach`` (:mod:`attach_socket`): ``SOCK_SEQPACKET``; every packet from
conmon is one read of the container's stdout or stderr prefixed by one byte, ``2`` = stdout,
``3`` = stderr (conmon's ``STDOUT_PIPE``/``STDERR_PIPE``; at most 8192 bytes of data). A
terminal's output is all ``2``. Packets we send go to the container's stdin (conmon reads at
most 32767 bytes per packet); ``shutdown(SHUT_WR)`` closes that stdin unless
``--leave-stdin-open``. conmon writes to attach clients with *blocking* writes: a client that
stops reading stalls the container's output, so clients must keep reading.

Control fifo ``<bundle>/ctl``: lines ``<type> <height> <width>\\n``; type 1 resizes the
terminal (conmon forwards ``<height> <width>`` through ``<bundle>/winsz`` to
``TIOCSWINSZ``), type 2 reopens (truncates) the log file.

Exit: conmon drains stdio, fsyncs the log, writes the exit file(s), removes the attach
socket and exits. The runtime's state stays ``stopped`` until ``runc delete``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal as signal_module
from dataclasses import dataclass
from pathlib import Path

from declarun.daemon.containers.runtime.exitwatch import (
    ExitStatus,
    ExitWatcher,
    read_exit_file,
    wait_for_exit_file,
)
from declarun.daemon.containers.runtime.oci import (
    ContainerNotFoundError,
    OciRuntime,
    OciRuntimeError,
)
from declarun.daemon.containers.runtime.syncpipe import (
    CONMON,
    MonitorError,
    conmon_alive,
    spawn_conmon,
)

__all__ = [
    "CreatedContainer",
    "MonitorError",
    "MonitorLayout",
    "conmon_args",
    "create_container",
    "start_container",
    "stop_container",
]

# runc create takes ~30 ms here; a minute covers a loaded machine starting 50 at once.
CREATE_TIMEOUT = 60.0


@dataclass(frozen=True)
class MonitorLayout:
    """Where one container's monitor files live.

    ``bundle`` holds ``config.json`` (written by :mod:`bundle`) and conmon's own files:
    ``conmon.pid``, ``container.pid``, ``attach``, ``ctl``, ``winsz``, ``exit``/``oom``
    (persist dir). ``exit_dir`` is shared by every container (one inotify watch); ``log_path``
    defaults to ``<bundle>/container.log``.
    """

    bundle: Path
    exit_dir: Path
    log_path: Path | None = None

    @property
    def log_file(self) -> Path:
        """The k8s-file log of the container."""
        return self.log_path or self.bundle / "container.log"

    @property
    def conmon_pidfile(self) -> Path:
        """conmon's pid (the long-lived, daemonized process)."""
        return self.bundle / "conmon.pid"

    @property
    def container_pidfile(self) -> Path:
        """The container init's host pid, written by the runtime."""
        return self.bundle / "container.pid"

    @property
    def attach_socket(self) -> Path:
        """conmon's attach socket (exists while conmon runs)."""
        return self.bundle / "attach"

    @property
    def ctl_fifo(self) -> Path:
        """conmon's control fifo (resize, reopen logs)."""
        return self.bundle / "ctl"

    @property
    def oom_file(self) -> Path:
        """Present once the container was OOM-killed."""
        return self.bundle / "oom"

    def exit_file(self, cid: str) -> Path:
        """Where conmon writes the exit status of ``cid``."""
        return self.exit_dir / cid


@dataclass(frozen=True)
class CreatedContainer:
    """A container conmon created: the init's host pid and conmon's pid."""

    pid: int
    conmon_pid: int


def conmon_args(
    runtime: OciRuntime,
    layout: MonitorLayout,
    cid: str,
    *,
    name: str | None = None,
    terminal: bool = False,
    stdin: bool = False,
    leave_stdin_open: bool = False,
    log_size_max: int | None = None,
) -> list[str]:
    """conmon's command line for creating ``cid`` (without the program name)."""
    args = [
        "--api-version", "1",
        "-c", cid,
        "-u", cid,
        "-n", name or cid,
        "-r", runtime.binary,
        "-b", str(layout.bundle),
        "-p", str(layout.container_pidfile),
        "-P", str(layout.conmon_pidfile),
        "-l", f"k8s-file:{layout.log_file}",
        "--exit-dir", str(layout.exit_dir),
        "--persist-dir", str(layout.bundle),
        "--full-attach",
        "--socket-dir-path", str(layout.bundle),
    ]  # fmt: skip
    for arg in runtime.global_args():
        args += ["--runtime-arg", arg]
    if terminal:
        args.append("-t")
    if stdin:
        args.append("-i")
    if leave_stdin_open:
        args.append("--leave-stdin-open")
    if log_size_max is not None and log_size_max > 0:
        args += ["--log-size-max", str(log_size_max)]
    return args


async def create_container(
    runtime: OciRuntime,
    layout: MonitorLayout,
    cid: str,
    *,
    name: str | None = None,
    terminal: bool = False,
    stdin: bool = False,
    leave_stdin_open: bool = False,
    log_size_max: int | None = None,
    conmon: str = CONMON,
    timeout: float = CREATE_TIMEOUT,
) -> CreatedContainer:
    """Create ``cid`` from ``layout.bundle`` under a new conmon; returns once it is *created*.

    ``terminal`` must match ``process.terminal`` in ``config.json``. Stale files of an
    earlier run (exit file, pidfiles) are removed first so they cannot be mistaken for this
    one's. Raises :class:`MonitorError` with the runtime's message when creation fails.
    """
    for stale in (layout.exit_file(cid), layout.conmon_pidfile, layout.container_pidfile):
        stale.unlink(missing_ok=True)
    (layout.bundle / "exit").unlink(missing_ok=True)
    layout.exit_dir.mkdir(parents=True, exist_ok=True)
    layout.log_file.parent.mkdir(parents=True, exist_ok=True)
    runtime.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    args = conmon_args(
        runtime, layout, cid, name=name, terminal=terminal, stdin=stdin,
        leave_stdin_open=leave_stdin_open, log_size_max=log_size_max,
    )  # fmt: skip
    pipes = await spawn_conmon(args, cwd=layout.bundle, conmon=conmon)
    try:
        message = await asyncio.wait_for(pipes.sync.read(), timeout)
    except TimeoutError as exc:
        _kill_conmon(layout.conmon_pidfile, cid)
        await _forget_failed(runtime, cid)
        raise MonitorError(f"conmon did not report the creation of {cid} in {timeout:g}s") from exc
    finally:
        pipes.close()
    if message is None or message.data <= 0:
        why = message.message if message is not None and message.message else "no message"
        await _forget_failed(runtime, cid)
        raise MonitorError(f"cannot create container {cid}: {why}")
    conmon_pid = int(layout.conmon_pidfile.read_text().strip())
    return CreatedContainer(pid=message.data, conmon_pid=conmon_pid)


def _kill_conmon(pidfile: Path, cid: str) -> None:
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    if conmon_alive(pid, cid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal_module.SIGKILL)


async def _forget_failed(runtime: OciRuntime, cid: str) -> None:
    # A failed `runc create` can leave a half-made container in the state root.
    with contextlib.suppress(OciRuntimeError):
        await runtime.delete(cid, force=True)


async def start_container(runtime: OciRuntime, cid: str) -> None:
    """Run the user process of a created container; connect attach clients before this."""
    await runtime.start(cid)


async def stop_container(
    runtime: OciRuntime,
    layout: MonitorLayout,
    cid: str,
    *,
    signal: int | str = signal_module.SIGTERM,
    timeout: float = 10.0,
    watcher: ExitWatcher | None = None,
) -> ExitStatus:
    """Docker's stop: ``signal``, then SIGKILL to every process after ``timeout`` seconds.

    Returns the exit status conmon recorded. A container that already stopped is no error.
    With the daemon's ``watcher`` the exit is seen at once instead of by 50 ms polling.
    """

    async def exited(limit: float) -> ExitStatus:
        if watcher is not None:
            return await asyncio.wait_for(watcher.wait(cid), limit)
        return await wait_for_exit_file(exit_file, limit)

    exit_file = layout.exit_file(cid)
    status = read_exit_file(exit_file)
    if status is not None:
        return status
    try:
        await runtime.kill(cid, signal)
    except ContainerNotFoundError:
        status = read_exit_file(exit_file)
        if status is None:
            raise MonitorError(
                f"container {cid} has neither runtime state nor exit status"
            ) from None
        return status
    except OciRuntimeError:
        pass  # "container not running": it ended meanwhile; its exit file is on the way
    with contextlib.suppress(TimeoutError):
        return await exited(max(timeout, 0.0))
    with contextlib.suppress(OciRuntimeError):
        await runtime.kill(cid, signal_module.SIGKILL, all=True)
    try:
        return await exited(CREATE_TIMEOUT)
    except TimeoutError as exc:
        raise MonitorError(f"container {cid} did not exit after SIGKILL") from exc
