"""``declarun daemon status`` and ``declarun daemon stop``: the background declarund.

``status`` exits 0 when declarund answers and 1 when it does not; ``stop`` exits 0 in both
cases (stopping a daemon that is not running is already done).
"""

from __future__ import annotations

import sys

import click

from declarun.cli.output import stdout_console
from declarun.daemon.config import DEFAULT_HOST
from declarun.errors import EngineError

__all__ = ["status", "stop"]


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
