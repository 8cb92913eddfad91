"""Connecting API clients to a container's (or an exec's) stdio: framing, pumping, detach keys.

The pieces ``POST /containers/{id}/attach`` and ``POST /exec/{id}/start`` share:

* :func:`frame` -- Docker's multiplexed framing for a stream without a TTY: an 8-byte
  header (stream byte 1 = stdout, 2 = stderr, three zero bytes, big-endian uint32 length)
  then the bytes. With a TTY the bytes go raw.
* :class:`DetachScanner` -- watches stdin for the detach sequence (``ctrl-p,ctrl-q`` by
  default, ``detachKeys`` / ``DetachKeys`` to change it); the bytes of a partial match are
  held back until the match fails, as dockerd's escape proxy does.
* :func:`pump` -- copies conmon's attach socket to the client and the client's stdin to
  the socket until the process ends (conmon closes the socket), the client detaches or goes
  away. At the client's end of input the process's stdin is closed.
* :class:`AttachWaiters` -- clients that attached to a container that is not running yet
  (``docker run`` attaches between create and start). The service's pre-start hook calls
  :meth:`AttachWaiters.connect_all` once conmon has created the container and before the
  user process runs, so not a byte of output is missed.

conmon writes to attach clients with blocking writes: a connection that nobody reads would
stall the container, so :func:`pump` keeps reading the socket for as long as it holds it and
drops it as soon as the client is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from declarun.daemon.containers.runtime.attach_socket import STDERR, STDOUT, AttachStream
from declarun.daemon.containers.runtime.syncpipe import MonitorError

__all__ = [
    "DEFAULT_DETACH_KEYS",
    "AttachOptions",
    "AttachWaiters",
    "DetachScanner",
    "frame",
    "parse_detach_keys",
    "pump",
]

log = logging.getLogger("declarun.daemon.attach")

DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p, ctrl-q
_READ_SIZE = 32768
_CTRL_SPECIAL = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def frame(stream: int, data: bytes) -> bytes:
    """One frame of Docker's multiplexed stream (``stream`` 1 = stdout, 2 = stderr)."""
    return struct.pack(">BxxxL", stream, len(data)) + data


def parse_detach_keys(spec: str) -> bytes:
    """``ctrl-p,ctrl-q`` -> bytes; ``ValueError`` with Docker's wording when malformed."""
    out = bytearray()
    for key in spec.split(","):
        if len(key) == 1:
            out.append(ord(key))
            continue
        lower = key.lower()
        if not lower.startswith("ctrl-") or len(key) != 6:
            raise ValueError(f"Invalid detach keys ({spec}) provided")
        char = lower[5]
        if "a" <= char <= "z":
            out.append(ord(char) - ord("a") + 1)
        elif char in _CTRL_SPECIAL:
            out.append(_CTRL_SPECIAL[char])
        else:
            raise ValueError(f"Invalid detach keys ({spec}) provided")
    if not out:
        raise ValueError(f"Invalid detach keys ({spec}) provided")
    return bytes(out)


class DetachScanner:
    """Finds the detach sequence in stdin; bytes of a partial match wait for the next chunk."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self._held = 0  # how many bytes of `keys` the input ended with

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """``(bytes to forward, detached)``; after a detach the rest of ``data`` is dropped."""
        if not self.keys:
            return data, False
        out = bytearray()
        for byte in data:
            if byte == self.keys[self._held]:
                self._held += 1
                if self._held == len(self.keys):
                    self._held = 0
                    return bytes(out), True
                continue
            if self._held:
                out += self.keys[: self._held]
                self._held = 0
                if byte == self.keys[0]:
                    self._held = 1
                    continue
            out.append(byte)
        return bytes(out), False


@dataclass(frozen=True)
class AttachOptions:
    """Which streams a client wants, and how to frame them."""

    tty: bool
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True
    detach_keys: bytes = DEFAULT_DETACH_KEYS

    def wants(self, stream: int) -> bool:
        """Whether output of ``stream`` goes to this client."""
        return self.stdout if stream == STDOUT else self.stderr if stream == STDERR else False

    def encode(self, stream: int, data: bytes) -> bytes:
        """``data`` as it goes on the wire: raw with a TTY, else framed."""
        return data if self.tty else frame(stream, data)


async def _copy_output(source: AttachStream, writer: asyncio.StreamWriter,
                       options: AttachOptions) -> None:  # fmt: skip
    while (item := await source.read()) is not None:
        stream, data = item
        if options.wants(stream):
            writer.write(options.encode(stream, data))
            await writer.drain()


async def _copy_input(source: AttachStream, reader: asyncio.StreamReader,
                      options: AttachOptions) -> bool:  # fmt: skip
    """Forward stdin; True when the client typed the detach keys."""
    scanner = DetachScanner(options.detach_keys)
    while True:
        data = await reader.read(_READ_SIZE)
        if not data:
            # End of the client's input: the process's stdin ends too (StdinOnce for
            # containers; conmon keeps it open itself with --leave-stdin-open).
            source.close_stdin()
            return False
        forward, detached = scanner.feed(data)
        if forward:
            await source.write(forward)
        if detached:
            return True


async def pump(
    source: AttachStream,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    options: AttachOptions,
) -> bool:
    """Copy output to the client and stdin to the process; True if the client detached.

    Returns when the process's output ended (conmon closed the socket), the client
    detached, or the client went away. The caller closes ``source`` and ``writer``.
    """
    output = asyncio.ensure_future(_copy_output(source, writer, options))
    waiting: set[asyncio.Future[object]] = {output}  # type: ignore[arg-type]
    input_task: asyncio.Future[bool] | None = None
    if options.stdin:
        input_task = asyncio.ensure_future(_copy_input(source, reader, options))
        waiting.add(input_task)  # type: ignore[arg-type]
    detached = False
    try:
        while output in waiting:
            done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if input_task is not None and input_task in done:
                try:
                    detached = input_task.result()
                except (ConnectionError, OSError, MonitorError):
                    detached = False  # stdin side broke: keep delivering output
                if detached:
                    break
            if output in done:
                with contextlib.suppress(ConnectionError, OSError):
                    output.result()
                break
    finally:
        for task in (output, input_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
    return detached


@dataclass
class _Waiter:
    socket_path: Path | None = None
    future: asyncio.Future[AttachStream] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class AttachWaiters:
    """Clients waiting for a container to start, by container ID."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[_Waiter]] = {}

    def add(self, container_id: str) -> asyncio.Future[AttachStream]:
        """A future that gets the attach connection made at the container's next start."""
        waiter = _Waiter()
        self._waiting.setdefault(container_id, []).append(waiter)
        return waiter.future

    def discard(self, container_id: str, future: asyncio.Future[AttachStream]) -> None:
        """Forget a waiter whose client went away (closing a connection already made)."""
        waiters = self._waiting.get(container_id, [])
        for waiter in list(waiters):
            if waiter.future is future:
                waiters.remove(waiter)
        if not waiters:
            self._waiting.pop(container_id, None)
        if future.done() and not future.cancelled() and future.exception() is None:
            future.result().close()

    def pending(self) -> Iterable[str]:
        """IDs of the containers someone waits for."""
        return list(self._waiting)

    def fail_all(self, container_id: str, reason: str) -> None:
        """End the waits of ``container_id``: its start failed (dockerd closes the streams)."""
        for waiter in self._waiting.pop(container_id, []):
            if not waiter.future.done():
                waiter.future.set_exception(MonitorError(reason))

    async def connect_all(self, container_id: str, socket_path: Path) -> None:
        """Connect every waiter of ``container_id`` to the freshly created container."""
        for waiter in self._waiting.pop(container_id, []):
            if waiter.future.done():
                continue
            try:
                stream = await AttachStream.connect(socket_path)
            except MonitorError as exc:
                log.warning("attach to %s failed: %s", container_id[:12], exc)
                waiter.future.set_exception(exc)
                continue
            if waiter.future.done():
                stream.close()
            else:
                waiter.future.set_result(stream)
