"""``declarun daemon status``, ``stop`` and ``check``: the background declarund.

``status`` exits 0 when declarund answers and 1 when it does not; ``stop`` exits 0 in both
cases (stopping a daemon that is not running is already done). ``check`` asks the daemon
at ``--host`` to check its data root, or -- when none answers there -- checks
``--data-root`` itself under the data-root lock; one line per problem, exit 1 if any.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from declarun.cli.output import stdout_console
from declarun.daemon.config import DEFAULT_DATA_ROOT, DEFAULT_HOST
from declarun.errors import EngineError

__all__ = ["check", "status", "stop"]


def _host_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--host",
        "host",
        envvar="DECLARUN_HOST",
        default=DEFAULT_HOST,
        show_default=True,
        metavar="unix:///PATH",
        help="The daemon's socket (also DECLARUN_HOST).",
    )(func)


def _version(host: str) -> str:
    # Late: docker-py is only needed when a daemon answers.
    from declarun.engine.dockerpy import DockerEngine
    from declarun.errdefs import ErrorKind

    try:
        engine = DockerEngine.open(host, timeout=10)
    except ErrorKind:  # the version is a nicety; status is about answering at all
        return "?"
    try:
        return engine.version().version
    except ErrorKind:
        return "?"
    finally:
        engine.close()


@click.command()
@_host_option
def status(host: str) -> None:
    """Say whether declarund answers at its socket (exit 0) or not (exit 1)."""
    from declarun.engine.connect import daemon_pid, ping  # late: the daemon needs no docker-py

    console = stdout_console()
    if not ping(host):
        console.print(f"declarund is not running at {host}", markup=False)
        sys.exit(1)
    pid = daemon_pid(host)
    who = f", pid {pid}" if pid else ""
    console.print(f"declarund {_version(host)} is running at {host}{who}", markup=False)


@click.command()
@_host_option
def stop(host: str) -> None:
    """Stop the declarund listening at its socket, and wait until it is gone."""
    from declarun.engine.connect import stop_daemon

    console = stdout_console()
    try:
        pid = stop_daemon(host)
    except PermissionError:
        raise EngineError(f"not allowed to stop the declarund at {host}: run as root") from None
    if pid is None:
        console.print(f"declarund is not running at {host}", markup=False)
        return
    console.print(f"declarund (pid {pid}) stopped", markup=False)


@click.command()
@_host_option
@click.option(
    "--data-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_ROOT,
    show_default=True,
    help="The data root to check when no daemon answers at --host.",
)
@click.option("--repair", is_flag=True, help="Remove what nothing owns, re-derive what can be.")
def check(host: str, data_root: Path, repair: bool) -> None:
    """Check declarund's data root: blobs, snapshots, leases, containers, networks, volumes.

    One line per problem found (with --repair: what was repaired, then what is left);
    exit 0 when nothing is wrong, 1 otherwise. Works whether the daemon runs or not.
    """
    from declarun.engine.connect import check_daemon, ping

    report: dict[str, Any]
    if ping(host):
        report = check_daemon(host, repair=repair)
        where = f"declarund at {host}"
    else:
        from declarun.daemon.main import check_data_root  # late: aiohttp and the stores

        report = check_data_root(data_root, repair=repair)
        where = f"data root {data_root} (no daemon answers at {host})"
    console = stdout_console()
    entries: list[dict[str, Any]] = [*report.get("Repaired", []), *report.get("Problems", [])]
    for entry in entries:
        console.print(str(entry.get("Line", "")), markup=False, highlight=False, soft_wrap=True)
    for note in report.get("Notes", []):
        print(f"note: {note}", file=sys.stderr)
    problems = len(report.get("Problems", []))
    if problems:
        print(f"{where}: {problems} problem{'s' if problems != 1 else ''}", file=sys.stderr)
        sys.exit(1)
    print(f"{where}: no problems found", file=sys.stderr)
