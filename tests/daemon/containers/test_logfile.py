"""Parsing and following conmon's k8s-file logs (pure logic; conmon's real output is
covered in test_monitor.py)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from declarun.daemon.containers.runtime.logfile import (
    LogRecord,
    format_timestamp,
    parse_line,
    parse_timestamp,
    read_log,
)

T0 = "2026-11-27T21:05:50.849843369+00:00"
T0_NS = 1795813550_849843369


async def collect(**kwargs: object) -> list[LogRecord]:
    return [r async for r in read_log(**kwargs)]  # type: ignore[arg-type]


def test_timestamps_keep_nanoseconds_and_offsets() -> None:
    assert parse_timestamp(T0) == T0_NS
    assert parse_timestamp("2026-11-27T23:05:50.849843369+02:00") == T0_NS
    assert parse_timestamp("2026-11-27T21:05:50.8Z") == T0_NS - 49843369
    assert parse_timestamp("2026-11-27T21:05:50Z") == T0_NS - 849843369
    assert format_timestamp(T0_NS) == "2026-11-27T21:05:50.849843369Z"
    with pytest.raises(ValueError):
        parse_timestamp("yesterday")


def test_full_and_partial_lines() -> None:
    assert parse_line(f"{T0} stdout F hi\n".encode()) == LogRecord(1, T0_NS, b"hi\n", False)
    assert parse_line(f"{T0} stderr P part\n".encode()) == LogRecord(2, T0_NS, b"part", True)
    assert parse_line(f"{T0} stdout F  two  spaces \n".encode()) == LogRecord(
        1, T0_NS, b" two  spaces \n", False
    )
    assert parse_line(f"{T0} stdout F \n".encode()) == LogRecord(1, T0_NS, b"\n", False)
    for junk in (b"", b"garbage\n", f"{T0} stdin F x\n".encode(), b"nodate stdout F x\n"):
        assert parse_line(junk) is None


def test_tail_since_until(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    lines = [f"2026-01-01T00:00:0{i}.000000000+00:00 stdout F l{i}\n" for i in range(5)]
    log.write_text("".join(lines))
    base = parse_timestamp("2026-01-01T00:00:00Z")
    data = lambda records: [r.data for r in records]  # noqa: E731
    assert data(asyncio.run(collect(path=log))) == [b"l0\n", b"l1\n", b"l2\n", b"l3\n", b"l4\n"]
    assert data(asyncio.run(collect(path=log, tail=2))) == [b"l3\n", b"l4\n"]
    assert data(asyncio.run(collect(path=log, tail=0))) == []
    since, until = base + 1_000_000_000, base + 3_000_000_000
    assert data(asyncio.run(collect(path=log, since_ns=since, until_ns=until))) == [
        b"l1\n", b"l2\n", b"l3\n",
    ]  # fmt: skip
    assert asyncio.run(collect(path=tmp_path / "missing.log")) == []


def test_follow_survives_truncation_by_rename(tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    log.write_text(f"{T0} stdout F one\n")

    async def writer() -> None:
        # An unfinished line must wait for its end; then conmon's size cap replaces the
        # file (a new file renamed over the old one).
        with log.open("a") as f:
            f.write(f"{T0} stdout F tw")
            f.flush()
            await asyncio.sleep(0.3)  # the follower polls meanwhile and sees half a line
            f.write("o\n")
        tmp = tmp_path / "c.log.tmp"
        tmp.write_text(f"{T0} stderr F three\n")
        os.rename(tmp, log)

    async def go() -> list[bytes]:
        stopped = asyncio.Event()
        seen: list[bytes] = []
        task: asyncio.Task[None] | None = None
        async for record in read_log(log, follow=True, stopped=stopped):
            seen.append(record.data)
            if task is None:
                task = asyncio.ensure_future(writer())
            if record.data == b"three\n":
                stopped.set()
        assert task is not None
        await task
        return seen

    assert asyncio.run(go()) == [b"one\n", b"two\n", b"three\n"]
