"""``declarun daemon``: run declarund, the built-in Docker-Engine-API daemon, in the foreground.

The flags mirror dockerd's. The group runs the daemon when no subcommand is given, so
later subcommands (``status``, ``stop``) can sit beside it.
"""

from __future__ import annotations

from pathlib import Path

import click

from declarun.daemon.config import (
    DEFAULT_DATA_ROOT,
    DEFAULT_HOST,
    LOG_LEVELS,
    RUNTIMES,
    DaemonConfig,
)
from declarun.errors import DaemonError

__all__ = ["daemon"]


@click.group(invoke_without_command=True)
@click.option(
    "-H",
    "--host",
    "hosts",
    multiple=True,
    metavar="ADDRESS",
    help=f"Where to listen: unix:///PATH or tcp://HOST:PORT (TLS only); repeatable. "
    f"Default {DEFAULT_HOST}.",
)
@click.option(
    "--data-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_ROOT,
    show_default=True,
    help="Where images, containers and the metadata database live.",
)
@click.option(
    "--tlsverify", is_flag=True, help="Require TLS client certificates (needed for tcp://)."
)
@click.option(
    "--tlscacert",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CA of client certificates.",
)
@click.option(
    "--tlscert", type=click.Path(dir_okay=False, path_type=Path), help="Server certificate."
)
@click.option(
    "--tlskey", type=click.Path(dir_okay=False, path_type=Path), help="Server private key."
)
@click.option(
    "--runtime", type=click.Choice(RUNTIMES), default="runc", show_default=True, help="OCI runtime."
)
@click.option(
    "--registry-mirror",
    "registry_mirrors",
    multiple=True,
    metavar="URL",
    help="Docker Hub mirror; repeatable.",
)
@click.option(
    "--insecure-registry",
    "insecure_registries",
    multiple=True,
    metavar="HOST[:PORT]|CIDR",
    help="Registry reachable over plain HTTP; repeatable.",
)
@click.option(
    "--max-concurrent-downloads",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Layers downloaded in parallel per pull.",
)
@click.option(
    "--default-address-pool",
    "address_pools",
    multiple=True,
    metavar="base=CIDR,size=N",
    help="Where networks created without a subnet get one (subnets of prefix length N carved "
    "from CIDR); repeatable, tried in order. Default: Docker's pools (172.17.0.0/16 ...).",
)
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="info", show_default=True)
@click.pass_context
def daemon(
    click_ctx: click.Context,
    hosts: tuple[str, ...],
    data_root: Path,
    tlsverify: bool,
    tlscacert: Path | None,
    tlscert: Path | None,
    tlskey: Path | None,
    runtime: str,
    registry_mirrors: tuple[str, ...],
    insecure_registries: tuple[str, ...],
    max_concurrent_downloads: int,
    address_pools: tuple[str, ...],
    log_level: str,
) -> None:
    """Run declarund, the built-in Docker-Engine-API daemon, in the foreground."""
    if click_ctx.invoked_subcommand is not None:
        return
    from declarun.daemon.main import run  # imported late: the other commands need no aiohttp

    try:
        config = DaemonConfig.build(
            hosts=hosts,
            data_root=data_root,
            tlsverify=tlsverify,
            tlscacert=tlscacert,
            tlscert=tlscert,
            tlskey=tlskey,
            runtime=runtime,
            registry_mirrors=registry_mirrors,
            insecure_registries=insecure_registries,
            max_concurrent_downloads=max_concurrent_downloads,
            log_level=log_level,
            address_pools=address_pools,
        )
    except DaemonError as exc:
        raise click.UsageError(str(exc), ctx=click_ctx) from None
    run(config)


def _register_control_commands() -> None:
    from declarun.cli.daemon_control import check, status, stop

    daemon.add_command(status)
    daemon.add_command(stop)
    daemon.add_command(check)


_register_control_commands()
