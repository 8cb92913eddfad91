"""Reading the log files conmon writes (its ``k8s-file`` driver), with ``follow``.

One line per chunk of output::

    2026-11-27T21:05:50.849843369+00:00 stdout F hi
    2026-11-27T21:05:50.849843369+00:00 stdout P partial

The timestamp is the local time with its offset, nanoseconds; then ``stdout``/``stderr``
(a terminal's output is all ``stdout``); then ``F`` for a full line, whose newline is the
line's own, or ``P`` for a piece of a line with no newline yet (conmon appends one to the
log line only). Reading gives :class:`LogRecord` values with the container's bytes exactly.

``follow`` polls the file every 100 ms (a log is read by at most a few clients at once,
and inotify on every followed file would cost a descriptor each); it reopens the file when
conmon truncated it (size cap reached: a new file is renamed over the old one) and ends once
the caller's ``stopped`` event is set and everything written before that has been read
(conmon flushes the log before it writes the exit file).
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["LogRecord", "format_timestamp", "parse_line", "parse_timestamp", "read_log"]

_STREAMS = {b"stdout": 1, b"stderr": 2}
_POLL_INTERVAL = 0.1
_CHUNK = 1 << 16


@dataclass(frozen=True)
class LogRecord:
    """One chunk of container output: stream (1 stdout, 2 stderr), time, bytes, partial."""

    stream: int
    time_ns: int
    data: bytes
    partial: bool

    @property
    def timestamp(self) -> str:
        """The time as Docker prints it (RFC 3339, UTC, nine fraction digits)."""
        return format_timestamp(self.time_ns)


def parse_timestamp(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time with up to nine fraction digits."""
    head, dot, rest = text.partition(".")
    fraction = ""
    offset = rest
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        fraction, offset = rest[:digits], rest[digits:]
    else:
        head, offset = text[:19], text[19:]
    if offset in ("Z", "z"):
        offset = "+00:00"
    seconds = int(datetime.fromisoformat(head + offset).timestamp())
    return seconds * 1_000_000_000 + int((fraction + "000000000")[:9])


def format_timestamp(time_ns: int) -> str:
    """``2026-01-01T00:00:00.000000000Z`` for a time in nanoseconds since the epoch."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"


def parse_line(line: bytes) -> LogRecord | None:
    """One log line (with its trailing newline) as a record; ``None`` if it is not one."""
    parts = line.split(b" ", 3)
    if len(parts) != 4 or parts[1] not in _STREAMS or parts[2] not in (b"F", b"P"):
        return None
    try:
        time_ns = parse_timestamp(parts[0].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    partial = parts[2] == b"P"
    data = parts[3]
    if partial and data.endswith(b"\n"):
        data = data[:-1]  # the newline conmon added to end the log line
    return LogRecord(_STREAMS[parts[1]], time_ns, data, partial)


def _wanted(record: LogRecord, since_ns: int | None, until_ns: int | None) -> bool:
    if since_ns is not None and record.time_ns < since_ns:
        return False
    return until_ns is None or record.time_ns <= until_ns


class _Follower:
    """An open log file that survives conmon replacing it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1
        self._ino = -1
        self.pending = b""

    def open(self) -> bool:
        try:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        self._ino = os.fstat(self._fd).st_ino
        self.pending = b""
        return True

    def read_lines(self) -> list[bytes]:
        """Complete lines written since the last call (an unfinished one waits)."""
        if self._fd < 0 and not self.open():
            return []
        buf = self.pending + self._read_all()
        if self._replaced():
            # Drain the old file first, then switch to the new one from its start.
            buf += self._read_all()
            os.close(self._fd)
            self._fd = -1
            if self.open():
                buf += self._read_all()
        lines = buf.split(b"\n")
        self.pending = lines.pop()
        return [line + b"\n" for line in lines]

    def _read_all(self) -> bytes:
        chunks = []
        while chunk := os.read(self._fd, _CHUNK):
            chunks.append(chunk)
        return b"".join(chunks)

    def _replaced(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        return st.st_ino != self._ino or st.st_size < os.lseek(self._fd, 0, os.SEEK_CUR)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


async def read_log(
    path: Path,
    *,
    follow: bool = False,
    stopped: asyncio.Event | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
    tail: int | None = None,
) -> AsyncIterator[LogRecord]:
    """Records of the log at ``path``: all, or the last ``tail``, within since/until.

    With ``follow``, keeps yielding new records until ``stopped`` is set (and the file is
    drained) or the caller stops iterating. A missing file reads as empty.
    """
    follower = _Follower(path)
    try:
        backlog: deque[LogRecord] = deque(maxlen=tail if tail is not None and tail >= 0 else None)
        for line in follower.read_lines():
            record = parse_line(line)
            if record is not None and _wanted(record, since_ns, until_ns):
                backlog.append(record)
        for record in backlog:
            yield record
        if not follow:
            return
        while True:
            done = stopped is not None and stopped.is_set()
            lines = follower.read_lines()
            for line in lines:
                record = parse_line(line)
                if record is not None and _wanted(record, since_ns, until_ns):
                    yield record
            if done:
                return
            if until_ns is not None and datetime.now(UTC).timestamp() * 1e9 > until_ns:
                return
            if not lines:
                await asyncio.sleep(_POLL_INTERVAL)
    finally:
        follower.close()
