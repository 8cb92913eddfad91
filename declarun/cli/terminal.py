"""Connecting the user's terminal to a process in a container (``exec``, ``run``).

With a TTY the local terminal goes into raw mode, so every key (Ctrl-C and Ctrl-D included)
reaches the process and its output comes back untouched; the remote TTY follows the window's
size (SIGWINCH). Without one, stdin is copied in until it ends (then the process reads EOF)
and stdout and stderr come back apart. Either way the terminal is restored however the
session ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import termios
import threading
import time
import tty as tty_mode
from collections.abc import Callable, Iterator, Sequence
from types import FrameType

from declarun.engine.port import Attached, Engine
from declarun.errdefs import ErrorKind

__all__ = ["decide_tty", "exec_attached", "run_attached"]

Resize = Callable[[int, int], None]  # (height, width)


def decide_tty(force: bool, refuse: bool) -> bool:
    """Compose's rule: a TTY when both stdin and stdout are terminals, unless ``-T``; ``-t``
    asks for one regardless."""
    if refuse:
        return False
    return force or (os.isatty(0) and os.isatty(1))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _pump_stdin(attached: Attached) -> None:
    """Copy our stdin to the process until it ends; then end the process's stdin."""
    try:
        while chunk := os.read(0, 65536):
            attached.write(chunk)
    except (OSError, ErrorKind):
        return  # the session ended under us: the output side tells how
    attached.close_input()


@contextlib.contextmanager
def _raw_terminal(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    saved = termios.tcgetattr(0)
    try:
        tty_mode.setraw(0)
        yield
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def _following_window(resize: Resize | None) -> Iterator[None]:
    if (
        resize is None
        or not os.isatty(1)
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return

    def apply_size(*_: object) -> None:
        size = os.get_terminal_size(1)
        with contextlib.suppress(ErrorKind):
            resize(size.lines, size.columns)

    def on_winch(signum: int, frame: FrameType | None) -> None:
        apply_size()

    previous = signal.signal(signal.SIGWINCH, on_winch)
    apply_size()
    try:
        yield
    finally:
        signal.signal(signal.SIGWINCH, previous)


def run_attached(
    attached: Attached, *, stdin_open: bool, tty: bool, resize: Resize | None = None
) -> None:
    """Connect our stdio to ``attached`` until its output ends (the process exited)."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        with (
            _raw_terminal(tty and stdin_open and os.isatty(0)),
            _following_window(resize if tty else None),
        ):
            if stdin_open:
                # A daemon thread: blocked in a read of our stdin, it must not keep us alive
                # once the process is gone.
                threading.Thread(
                    target=_pump_stdin, args=(attached,), name="declarun-stdin", daemon=True
                ).start()
            for stream, chunk in attached.output():
                _write_all(2 if stream == 2 else 1, chunk)
    finally:
        attached.close()


def exec_attached(
    engine: Engine,
    container: str,
    command: Sequence[str],
    *,
    user: str,
    workdir: str | None,
    env: Sequence[str],
    interactive: bool,
    tty: bool,
) -> int:
    """Run ``command`` in ``container`` on ``engine`` with our stdio attached (see
    :func:`run_attached`); its exit code (1 when the engine never says)."""
    exec_id = engine.exec_create(
        container, command, user=user, workdir=workdir, env=env, stdin=interactive, tty=tty
    )
    attached = engine.exec_attach(exec_id, tty=tty)
    run_attached(
        attached,
        stdin_open=interactive,
        tty=tty,
        resize=lambda h, w: engine.exec_resize(exec_id, height=h, width=w),
    )
    # The engine may note the exit code a moment after the output ends.
    deadline = time.monotonic() + 10
    while (code := engine.exec_exit_code(exec_id)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return 1 if code is None else int(code)
