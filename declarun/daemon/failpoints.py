"""Fail points: named places where declarund can be told to die, for the crash tests.

A fail point is one line at the place it names::

    failpoints.hit("pull-blob-before-commit")

Unless ``DECLARUND_FAILPOINTS`` is set when the daemon starts, :data:`hit` is a function
that does nothing (installed at import, never swapped): a daemon in production pays one
call of an empty function per point passed, nothing else. :func:`install_from_environment`
(called once by :func:`declarun.daemon.main.run`) swaps in the armed version when the
variable is set. Its value is either a list of points, or ``@`` and the path of a file
holding that list, read again whenever it changes (so a test can arm the next point in a
running daemon, and disarm it before the restart)::

    DECLARUND_FAILPOINTS="pull-download=crash@3,unpack-midway"
    DECLARUND_FAILPOINTS="@/tmp/test/failpoints"

Each entry is ``NAME`` or ``NAME=ACTION``; actions:

``crash`` (the default), ``crash@N``
    Write one line naming the point to standard error, then SIGKILL the daemon itself at
    the first (the N-th) time the point is passed since it was armed: no clean-up, no
    ``finally``, exactly what a power cut or the OOM killer leaves behind.
``sleep:SECONDS``
    Block the calling thread that long each time (to hold an operation in the middle, for
    tests that interrupt a client at that moment).

:data:`POINTS` lists every point with what it interrupts; an unknown name in the variable
is logged and ignored.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ENV", "POINTS", "Action", "Armed", "hit", "install_from_environment", "parse"]

log = logging.getLogger("declarun.daemon.failpoints")

ENV = "DECLARUND_FAILPOINTS"

#: Every fail point of declarund and the moment it stands for.
POINTS: Mapping[str, str] = {
    "pull-download": "a pull, while a layer blob is downloading (after a chunk was written)",
    "pull-blob-before-commit": "a pull, once a blob is written in full, before it is committed",
    "image-before-unpack": "an image registered in the metadata (load), before its unpack",
    "unpack-midway": "in the middle of unpacking a layer (after some entries were applied)",
    "runc-created": "a container start, after runc create, before runc start",
    "container-record-written": "a container create, right after its record was stored",
    "commit-midway": "a commit, after its layer was stored, before the image is registered",
    "rm-midway": "a container removal, after the runtime container was deleted",
    "network-connect-midway": "a network connect, after CNI attached the container",
    "network-disconnect-midway": "a network disconnect, after CNI detached the container",
    "volume-remove-midway": "a volume removal, once its directory was moved aside",
    "build-run-before-commit": "a build, after a RUN step's command ended, before its commit",
}


def _noop(name: str, /) -> None:
    """The fail point of a production daemon: nothing."""


#: Pass the fail point ``name`` (see the module docstring). Reassigned only by
#: :func:`install_from_environment`; callers must look it up on the module each time.
hit: Callable[[str], None] = _noop


@dataclass(frozen=True)
class Action:
    """What an armed point does: ``crash`` at the ``after``-th pass, or ``sleep``."""

    kind: str
    after: int = 1
    seconds: float = 0.0


def parse(text: str) -> dict[str, Action]:
    """The armed points of a specification (``NAME[=ACTION],...``; lines count as commas).

    Raises ValueError naming the entry that is not understood.
    """
    armed: dict[str, Action] = {}
    for raw in text.replace("\n", ",").split(","):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        name, _, action = entry.partition("=")
        name, action = name.strip(), action.strip() or "crash"
        if action == "crash":
            armed[name] = Action("crash")
        elif action.startswith("crash@") and action[6:].isdigit() and int(action[6:]) > 0:
            armed[name] = Action("crash", after=int(action[6:]))
        elif action.startswith("sleep:"):
            try:
                armed[name] = Action("sleep", seconds=float(action[6:]))
            except ValueError:
                raise ValueError(f"fail point {entry!r}: bad sleep duration") from None
        else:
            raise ValueError(f"fail point {entry!r}: unknown action (crash, crash@N, sleep:S)")
    return armed


class Armed:
    """The fail points of a daemon started with :data:`ENV` set."""

    def __init__(self, spec: str) -> None:
        self._file = Path(spec[1:]) if spec.startswith("@") else None
        self._text = "" if self._file is not None else spec
        self._stamp: tuple[int, int] | None = None
        self._points: dict[str, Action] = {}
        self._passes: dict[str, int] = {}
        self._lock = threading.Lock()
        self._load(self._text)

    def _load(self, text: str) -> None:
        try:
            points = parse(text)
        except ValueError as exc:
            log.error("%s: %s", ENV, exc)
            points = {}
        for name in points:
            if name not in POINTS:
                log.error("%s: unknown fail point %r ignored", ENV, name)
        self._points = {n: a for n, a in points.items() if n in POINTS}
        self._passes = {}

    def _refresh(self) -> None:
        if self._file is None:
            return
        try:
            st = self._file.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                self._stamp = stamp
                self._load(self._file.read_text())
        except OSError:
            if self._stamp is not None:
                self._stamp = None
                self._load("")

    def hit(self, name: str, /) -> None:
        """Pass the point ``name``: crash or sleep if it is armed."""
        with self._lock:
            self._refresh()
            action = self._points.get(name)
            if action is None:
                return
            passes = self._passes.get(name, 0) + 1
            self._passes[name] = passes
        if action.kind == "sleep":
            log.warning("fail point %s: sleeping %.1f s", name, action.seconds)
            time.sleep(action.seconds)
            # Said, so a test can wait for the point to let go: on the event loop's thread
            # the sleep holds every request, a ping included.
            log.warning("fail point %s: slept", name)
        elif passes >= action.after:
            _die(name)


def _die(name: str) -> None:
    # Straight to the file descriptor: logging handlers may buffer, and nothing after this
    # line runs.
    line = f"declarund: fail point {name} reached: killing the daemon (SIGKILL)\n"
    os.write(sys.stderr.fileno(), line.encode())
    os.kill(os.getpid(), signal.SIGKILL)


def install_from_environment(environ: Mapping[str, str] | None = None) -> bool:
    """Arm the fail points :data:`ENV` names (True), or leave :data:`hit` a no-op (False)."""
    global hit
    spec = (os.environ if environ is None else environ).get(ENV, "")
    if not spec:
        hit = _noop
        return False
    armed = Armed(spec)
    hit = armed.hit
    log.warning("fail points are enabled (%s=%s): this daemon may kill itself", ENV, spec)
    return True
