"""Attaching to a container's stdio through conmon's attach socket, and the control fifo.

The socket is ``SOCK_SEQPACKET``: each packet conmon sends is one chunk of output prefixed by
a byte naming the stream (2 = stdout, 3 = stderr); each packet we send becomes container
stdin. See :mod:`monitor` for the whole protocol. :meth:`AttachStream.read` returns Docker's
stream numbers (1 = stdout, 2 = stderr), ready for the multiplexed framing of the API.

Paths of unix sockets are limited to 108 bytes; the data root can be deeper than that, so
we connect through ``/proc/self/fd/<fd of the socket's directory>/attach``, as conmon binds.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
from pathlib import Path

from declarun.daemon.containers.runtime.syncpipe import MonitorError

__all__ = [
    "STDERR",
    "STDOUT",
    "AttachStream",
    "reopen_logs",
    "resize_terminal",
]

STDOUT = 1
STDERR = 2
_CONMON_STREAMS = {2: STDOUT, 3: STDERR}
# conmon reads stdin packets into a 32768-byte buffer minus one; larger packets would be cut.
_MAX_STDIN_PACKET = 32767
# conmon sends at most 8192 bytes of data plus the stream byte per packet.
_RECV_SIZE = 65536
_WIN_RESIZE = 1
_REOPEN_LOGS = 2


class AttachStream:
    """One connection to a conmon attach socket (a container's or an exec session's)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._stdin_closed = False

    @classmethod
    async def connect(cls, socket_path: Path) -> AttachStream:
        """Connect to ``socket_path``; :class:`MonitorError` if no conmon listens there."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        sock.setblocking(False)
        dir_fd = os.open(socket_path.parent, os.O_PATH | os.O_CLOEXEC)
        try:
            address = f"/proc/self/fd/{dir_fd}/{socket_path.name}"
            await asyncio.get_running_loop().sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            raise MonitorError(f"cannot attach: {socket_path}: {exc.strerror}") from exc
        finally:
            os.close(dir_fd)
        return cls(sock)

    async def read(self) -> tuple[int, bytes] | None:
        """The next ``(stream, data)``; ``None`` once conmon closed the connection (exit)."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                packet = await loop.sock_recv(self._sock, _RECV_SIZE)
            except ConnectionResetError:
                return None
            except OSError as exc:
                if exc.errno == errno.EBADF:
                    return None
                raise
            if not packet:
                return None
            stream = _CONMON_STREAMS.get(packet[0])
            if stream is not None and len(packet) > 1:
                return stream, packet[1:]

    async def write(self, data: bytes) -> None:
        """Send ``data`` to the container's stdin (conmon needs ``-i``)."""
        loop = asyncio.get_running_loop()
        view = memoryview(data)
        for start in range(0, len(view), _MAX_STDIN_PACKET):
            await loop.sock_sendall(self._sock, view[start : start + _MAX_STDIN_PACKET])

    def close_stdin(self) -> None:
        """Signal end of input: conmon closes the container's stdin (unless told to keep it)."""
        if not self._stdin_closed:
            self._stdin_closed = True
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Drop the connection; the container keeps running."""
        self._sock.close()

    async def __aenter__(self) -> AttachStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


def _write_ctl(ctl_fifo: Path, line: str) -> None:
    try:
        # Non-blocking open fails with ENXIO when nobody reads: conmon is gone.
        fd = os.open(ctl_fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise MonitorError(f"the container's monitor is not running ({exc.strerror})") from exc
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def resize_terminal(ctl_fifo: Path, width: int, height: int) -> None:
    """Set the terminal size of a ``-t`` container or exec (conmon's ``ctl`` fifo)."""
    if width <= 0 or height <= 0:
        raise MonitorError(f"invalid terminal size {width}x{height}")
    _write_ctl(ctl_fifo, f"{_WIN_RESIZE} {height} {width}\n")


def reopen_logs(ctl_fifo: Path) -> None:
    """Make conmon start its log file afresh (the old content is dropped)."""
    _write_ctl(ctl_fifo, f"{_REOPEN_LOGS} 0 0\n")
