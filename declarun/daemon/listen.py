"""The daemon's listening sockets: a private Unix socket, or TCP with mutual TLS.

The Unix socket is the daemon's front door and as powerful as root, so it is created
mode 0660, owned by root's group, and never exists with wider permissions: the process
umask is narrowed around bind(). A socket file left by a crashed daemon is replaced; one
that still answers belongs to a live daemon and is refused.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import stat
from pathlib import Path

from declarun.daemon.config import TlsConfig
from declarun.errors import DaemonError

__all__ = ["LISTEN_BACKLOG", "SOCKET_MODE", "UnixListener", "bind_unix", "server_tls_context"]

SOCKET_MODE = 0o660
_PARENT_MODE = 0o711
# Connections the kernel queues before the daemon accepts them (capped by
# net.core.somaxconn). dockerd's Go listeners ask for somaxconn too: with 128, a burst of
# clients fills the queue while the event loop is busy, and a client's connect fails with
# EAGAIN ("resource temporarily unavailable") instead of waiting its turn.
LISTEN_BACKLOG = 4096


class UnixListener:
    """A bound, listening Unix socket, and how to remove its file at shutdown."""

    def __init__(self, path: Path, sock: socket.socket) -> None:
        self.path = path
        self.socket = sock
        self._inode = os.stat(path).st_ino

    def remove(self) -> None:
        """Unlink the socket file, unless another process has replaced it meanwhile."""
        with contextlib.suppress(FileNotFoundError):
            if os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)


def bind_unix(path: Path) -> UnixListener:
    """Create the listening socket at ``path`` with mode 0660; raises DaemonError."""
    try:
        path.parent.mkdir(mode=_PARENT_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise DaemonError(f"cannot create {path.parent}: {exc.strerror}") from None
    _remove_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # Only owner and group may ever reach the socket: no world-access window.
        old_umask = os.umask(0o117)
        try:
            sock.bind(str(path))
        finally:
            os.umask(old_umask)
        os.chmod(path, SOCKET_MODE)
        if os.geteuid() == 0:
            os.chown(path, 0, 0)
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise DaemonError(f"cannot listen on unix://{path}: {exc.strerror or exc}") from None
    return UnixListener(path, sock)


def _remove_stale(path: Path) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise DaemonError(f"cannot listen on unix://{path}: a file that is not a socket is there")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        # Nobody answers: left behind by a daemon that died. Safe to replace.
        os.unlink(path)
        return
    finally:
        probe.close()
    raise DaemonError(f"cannot listen on unix://{path}: another daemon is serving it")


def server_tls_context(tls: TlsConfig) -> ssl.SSLContext:
    """A TLS server context that requires a client certificate signed by ``tls.cacert``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(tls.cert), str(tls.key))
        context.load_verify_locations(cafile=str(tls.cacert))
    except (OSError, ssl.SSLError) as exc:
        raise DaemonError(f"cannot load TLS certificates: {exc}") from None
    context.verify_mode = ssl.CERT_REQUIRED
    return context
