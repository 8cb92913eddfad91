"""Running declarund: data root, lock, services, listeners, signals, clean shutdown.

:func:`run` is what ``declarun daemon`` and ``python -m declarun.daemon`` call. It opens
the services (:func:`declarun.daemon.wiring.open_services`, the composition root), serves
the API areas :func:`~declarun.daemon.wiring.api_routes` lists, and returns when the
daemon was asked to stop (SIGTERM or SIGINT): listeners closed, open streams ended,
services closed, socket files removed. SIGHUP publishes a ``daemon reload`` event, as dockerd does
on a configuration reload (declarund has no configuration file to re-read yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from declarun import __version__
from declarun.daemon import failpoints, sysinfo
from declarun.daemon.api.server import make_app
from declarun.daemon.check import offline_context, run_check
from declarun.daemon.config import DaemonConfig
from declarun.daemon.listen import LISTEN_BACKLOG, UnixListener, bind_unix, server_tls_context
from declarun.daemon.lockfile import DataRootLock
from declarun.daemon.wiring import Services, api_routes, open_services
from declarun.errors import DaemonError

__all__ = ["check_data_root", "configure_logging", "prepare_data_root", "run"]

log = logging.getLogger("declarun.daemon")

_DATA_ROOT_MODE = 0o711
# Streams still open at shutdown get this long to finish before they are cancelled.
_SHUTDOWN_GRACE = 5.0


def configure_logging(level: str) -> None:
    """Log to stderr at ``level``; request lines only at debug level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    numeric = logging.CRITICAL if level == "fatal" else getattr(logging, level.upper())
    root.setLevel(numeric)
    logging.getLogger("aiohttp.access").setLevel(
        logging.INFO if numeric <= logging.DEBUG else logging.WARNING
    )
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequestFilter) for f in server_log.filters):
        server_log.addFilter(MalformedRequestFilter())


class MalformedRequestFilter(logging.Filter):
    """Log a request aiohttp could not parse as one warning line, not an error traceback.

    Bytes that are not HTTP are the client's fault, answered 400 and closed; a traceback
    per malformed request would let any client fill the daemon's log with stack dumps.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            detail = " ".join(str(exc).split())[:200]
            record.msg, record.args, record.exc_info = (
                "refused a malformed request: %s",
                (detail,),
                None,
            )
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def prepare_data_root(root: Path) -> str:
    """Create the data root (0711) and return this daemon's engine ID, kept in it."""
    try:
        root.mkdir(mode=_DATA_ROOT_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise DaemonError(f"cannot create data root {root}: {exc.strerror}") from None
    if not root.is_dir():
        raise DaemonError(f"data root {root} is not a directory")
    id_file = root / "engine-id"
    with contextlib.suppress(OSError, UnicodeDecodeError):
        existing = id_file.read_text().strip()
        if existing:
            return existing
    engine_id = str(uuid.uuid4())
    tmp = root / f".engine-id.{os.getpid()}"
    try:
        tmp.write_text(engine_id + "\n")
        os.replace(tmp, id_file)
    except OSError as exc:
        raise DaemonError(f"cannot write {id_file}: {exc.strerror}") from None
    return engine_id


def run(config: DaemonConfig) -> None:
    """Run declarund in the foreground until SIGTERM/SIGINT; raises DaemonError on failure."""
    configure_logging(config.log_level)
    failpoints.install_from_environment()
    engine_id = prepare_data_root(config.data_root)
    with DataRootLock(config.lock_path):
        asyncio.run(_serve(config, engine_id))
    log.info("declarund stopped")


def check_data_root(data_root: Path, *, repair: bool = False) -> dict[str, Any]:
    """``declarun daemon check`` on the data root of a declarund that is not running.

    Takes the data-root lock for the duration (DaemonError naming the daemon that holds
    it otherwise: ask that one, through its socket) and answers what the daemon's
    ``POST /declarun/check`` answers.
    """
    if not (data_root / "metadata.db").is_file():
        raise DaemonError(f"{data_root} is not a declarund data root (no metadata.db)")
    with DataRootLock(data_root / "declarund.lock"), offline_context(data_root) as context:
        report = asyncio.run(run_check(context, repair=repair))
    return report.to_json()


async def _serve(config: DaemonConfig, engine_id: str) -> None:
    if not sysinfo.runtime_info(config.runtime)[0]:
        log.warning("OCI runtime %s not found in PATH; containers will not start", config.runtime)
    async with open_services(config, engine_id) as services:
        await _serve_api(services)


async def _serve_api(services: Services) -> None:
    config = services.config
    app = make_app(api_routes(services), on_shutdown=[services.events.close])
    runner = web.AppRunner(
        app,
        handle_signals=False,
        handler_cancellation=True,
        shutdown_timeout=_SHUTDOWN_GRACE,
        access_log=logging.getLogger("aiohttp.access"),
    )
    await runner.setup()
    listeners: list[UnixListener] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        # Before the first socket exists: a client may signal as soon as it sees the socket,
        # and Python's own SIGINT handler would end the daemon with KeyboardInterrupt.
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        loop.add_signal_handler(signal.SIGHUP, _publish_reload, services)
        for address in config.hosts:
            if address.scheme == "unix":
                assert address.path is not None
                listener = bind_unix(address.path)
                listeners.append(listener)
                await web.SockSite(runner, listener.socket, backlog=LISTEN_BACKLOG).start()
            else:
                assert config.tls is not None  # DaemonConfig refuses TCP without TLS
                site = web.TCPSite(
                    runner,
                    address.host,
                    address.port,
                    ssl_context=server_tls_context(config.tls),
                    backlog=LISTEN_BACKLOG,
                )
                try:
                    await site.start()
                except OSError as exc:
                    raise DaemonError(
                        f"cannot listen on {address}: {exc.strerror or exc}"
                    ) from None
            log.info("API listen on %s", address)
        log.info(
            "declarund %s started (data root %s, runtime %s, pid %d)",
            __version__,
            config.data_root,
            config.runtime,
            os.getpid(),
        )
        await stop.wait()
        log.info("shutting down")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        services.events.close()
        await runner.cleanup()
        for listener in listeners:
            listener.remove()


def _publish_reload(services: Services) -> None:
    config = services.config
    services.events.publish(
        "daemon",
        "reload",
        services.engine_id,
        {
            "name": sysinfo.hostname(),
            "default-runtime": config.runtime,
            "max-concurrent-downloads": str(config.max_concurrent_downloads),
            "registry-mirrors": ",".join(config.registry_mirrors),
            "insecure-registries": ",".join(config.insecure_registries),
        },
    )
    log.info("SIGHUP: published daemon reload event")
