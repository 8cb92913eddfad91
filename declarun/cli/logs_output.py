"""Container logs, interleaved and prefixed: ``web    | GET / 200``, one colour per container.

Past logs are fetched with the engine's timestamps and merged in time order; ``follow``
streams each container on its own thread and prints lines as they arrive, and when a
container goes (a recreation by ``apply`` or ``watch``, a restart) it picks up whichever
container next holds the name. The engine's timestamps are shown only when asked for.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Protocol

from rich.text import Text

from declarun.cli.output import stdout_console
from declarun.engine.port import Engine
from declarun.errdefs import ErrorKind

__all__ = ["LogSource", "follow_logs", "follow_streams", "print_logs", "split_lines"]


class LogSource(Protocol):
    """Where logs come from, by name: an engine's containers (the engine port has these
    methods), or a Swarm's services (``cli.swarm_commands``)."""

    def container_logs(
        self, name: str, *, tail: int | None = None, timestamps: bool = False
    ) -> bytes:
        """The log so far."""
        ...

    def follow_logs(
        self, name: str, *, tail: int | None = None, timestamps: bool = False
    ) -> Iterator[bytes]:
        """The log so far, then new output as it comes."""
        ...


_LOOK_AGAIN = 0.5  # seconds between looks for a container that went away
_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "bright_red", "bright_cyan")


def split_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Whole lines out of a stream of byte chunks (a last line without newline included)."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line.decode(errors="replace").rstrip("\r")
    if pending:
        yield pending.decode(errors="replace").rstrip("\r")


def _split_timestamp(line: str) -> tuple[str, str]:
    stamp, _, text = line.partition(" ")
    return stamp, text


class _Printer:
    def __init__(self, names: list[str], prefix: str, timestamps: bool) -> None:
        self.console = stdout_console()
        self.timestamps = timestamps
        self.labels = {n: n.removeprefix(prefix) for n in names}
        self.width = max((len(label) for label in self.labels.values()), default=0)
        self.colours = {n: _COLOURS[i % len(_COLOURS)] for i, n in enumerate(names)}

    def line(self, name: str, stamp: str, text: str) -> None:
        shown = Text(f"{self.labels[name].ljust(self.width)} | ", style=self.colours[name])
        if self.timestamps:
            shown.append(f"{stamp} ", style="dim")
        shown.append(text)
        self.console.print(shown, soft_wrap=True)


def print_logs(
    engine: LogSource, names: list[str], prefix: str, *, tail: int | None, timestamps: bool
) -> None:
    """Print the logs so far of containers ``names``, merged in time order."""
    printer = _Printer(names, prefix, timestamps)
    merged: list[tuple[str, int, str, str]] = []
    for name in names:
        raw = engine.container_logs(name, timestamps=True, tail=tail)
        for index, line in enumerate(split_lines([raw])):
            stamp, text = _split_timestamp(line)
            merged.append((stamp, index, name, text))
    # Docker's log timestamps are fixed-width RFC 3339, so text order is time order.
    for stamp, _, name, text in sorted(merged):
        printer.line(name, stamp, text)


def _now_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def _follow_one(
    engine: Engine,
    name: str,
    tail: int | None,
    out: queue.Queue[tuple[str, str]],
    stop: threading.Event,
) -> None:
    """Follow the container called ``name`` — the one there now, and whichever takes its name
    later (a recreation) or the same one started again — until ``stop``."""
    followed: str | None = None  # the id whose log was followed last
    since: float | None = None
    told_missing = False
    while not stop.is_set():
        try:
            found = engine.inspect_container(name)
        except ErrorKind:  # not there (yet, or any more): a recreation may bring it back
            found = None
        if found is None and followed is None and not told_missing:
            out.put((name, f"{_now_stamp()} (not there yet: waiting for it)"))
            told_missing = True
        if found is None or (found.id == followed and not found.state.running):
            stop.wait(_LOOK_AGAIN)
            continue
        if followed is not None:
            what = "restarted" if found.id == followed else "recreated; following the new one"
            out.put((name, f"{_now_stamp()} ({what})"))
        resumed = found.id == followed
        followed = found.id
        try:
            stream = engine.follow_logs(
                name,
                timestamps=True,
                tail=tail if since is None else None,
                since=since if resumed else None,
            )
            for line in split_lines(stream):
                out.put((name, line))
        except ErrorKind:
            pass  # removed mid-stream: look for what comes next
        since = time.time()


def follow_logs(
    engine: Engine, names: list[str], prefix: str, *, tail: int | None, timestamps: bool
) -> None:
    """Print containers' logs as they are written, following each name across replacements
    and restarts, until Ctrl-C (KeyboardInterrupt)."""
    printer = _Printer(names, prefix, timestamps)
    lines: queue.Queue[tuple[str, str]] = queue.Queue()
    stop = threading.Event()
    for name in names:
        threading.Thread(
            target=_follow_one,
            args=(engine, name, tail, lines, stop),
            daemon=True,
            name=f"logs-{name}",
        ).start()
    try:
        while True:
            try:
                # Bounded: Ctrl-C is handled between bytecodes of this thread only.
                name, line = lines.get(timeout=_LOOK_AGAIN)
            except queue.Empty:
                continue
            stamp, text = _split_timestamp(line)
            printer.line(name, stamp, text)
    finally:
        stop.set()


def _pump(
    source: LogSource, name: str, tail: int | None, out: queue.Queue[tuple[str, str] | None]
) -> None:
    try:
        for line in split_lines(source.follow_logs(name, timestamps=True, tail=tail)):
            out.put((name, line))
    except ErrorKind as exc:  # a stream cut off ends that stream, not the command
        out.put((name, f"(log stream ended: {exc})"))
    finally:
        out.put(None)


def follow_streams(
    source: LogSource, names: list[str], prefix: str, *, tail: int | None, timestamps: bool
) -> None:
    """Print the logs of ``names`` as they are written, until every stream ends (or Ctrl-C):
    for sources whose one stream already spans replacements (a Swarm service's log covers
    each of its tasks, the new ones too)."""
    printer = _Printer(names, prefix, timestamps)
    lines: queue.Queue[tuple[str, str] | None] = queue.Queue()
    for name in names:
        threading.Thread(
            target=_pump, args=(source, name, tail, lines), daemon=True, name=f"logs-{name}"
        ).start()
    open_streams = len(names)
    while open_streams:
        try:
            # Bounded: Ctrl-C is handled between bytecodes of this thread only.
            item = lines.get(timeout=_LOOK_AGAIN)
        except queue.Empty:
            continue
        if item is None:
            open_streams -= 1
            continue
        name, line = item
        stamp, text = _split_timestamp(line)
        printer.line(name, stamp, text)
