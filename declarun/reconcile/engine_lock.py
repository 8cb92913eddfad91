"""One apply at a time per stack and engine: a lock the engine itself arbitrates.

Two applies of one stack at once undo each other (one removes the other's temporary
replacement container, the other fails on the rename). A lock file would only cover one
machine; two machines may drive one daemon. So the lock lives on the engine, as a volume
named ``declarun.lock.<stack>`` whose labels say who holds it (a random token, the host, its
boot id, the pid and that process's start time, the user, the command, since when).

Why a volume: creating one is arbitrated by the engine under its name. dockerd and declarund
both answer a create of a name that exists with the volume that is there, labels untouched
(an engine that refuses with 409 Conflict instead works too), so whoever finds their own
token in the answer holds the lock, and everyone else learns who does. A volume needs no
image, costs a directory, and is never mistaken for the stack's own (it carries no
``dev.declarun.stack`` label, so plans never see it).

Liveness:

* the holder keeps a *heartbeat*: every :data:`HEARTBEAT` seconds it creates a volume
  ``declarun.lock.<stack>.beat.<token>.<n>`` labelled with the time, and removes the previous
  one (labels cannot change, so the beat is a new name each time);
* a lock is *stale* when its holder ran on this machine (same host and boot) and its process
  is gone (no such pid, or a pid reused by another process: the start time differs), or,
  from another machine, when neither the lock nor a beat is younger than :data:`EXPIRY`.

Taking over a stale lock is made safe by a claim: whoever wants to remove a stale lock first
creates ``declarun.lock.<stack>.takeover.<stale token>``; the engine picks one winner, who
removes the stale lock (still that token's) and its beats, then its claim, and everyone tries
again. A claim whose winner died is itself given up after :data:`CLAIM_TIMEOUT`.
"""

from __future__ import annotations

import getpass
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from declarun.engine.port import Engine
from declarun.engine.types import VolumeSummary
from declarun.errdefs import Conflict, ErrorKind, NotFound
from declarun.errors import DeclarunError

__all__ = [
    "CLAIM_TIMEOUT",
    "DEFAULT_LOCK_TIMEOUT",
    "EXPIRY",
    "HEARTBEAT",
    "LOCK_LABEL",
    "Holder",
    "StackLocked",
    "hold_stack_lock",
    "lock_volume_name",
]

LOCK_LABEL = "dev.declarun.lock"
_TOKEN = f"{LOCK_LABEL}.token"
_HOST = f"{LOCK_LABEL}.host"
_BOOT = f"{LOCK_LABEL}.boot"
_PID = f"{LOCK_LABEL}.pid"
_PID_START = f"{LOCK_LABEL}.pid-start"
_USER = f"{LOCK_LABEL}.user"
_COMMAND = f"{LOCK_LABEL}.command"
_SINCE = f"{LOCK_LABEL}.since"
_BEAT = f"{LOCK_LABEL}.beat"

#: Seconds between heartbeats of a holder.
HEARTBEAT = 10.0
#: Seconds without a heartbeat after which a holder on another machine is taken for dead.
EXPIRY = 60.0
#: Seconds after which an unfinished takeover claim is given up.
CLAIM_TIMEOUT = 30.0
#: How long a command waits for a lock by default (seconds).
DEFAULT_LOCK_TIMEOUT = 300.0
_RETRY = 1.0


class StackLocked(DeclarunError):
    """Another declarun holds the stack's lock on this engine (and we may not wait longer)."""


def lock_volume_name(stack: str) -> str:
    """``declarun.lock.<stack>``: no stack's own objects (``<stack>-...``) can be so named."""
    return f"declarun.lock.{stack}"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _process_start(pid: int) -> str:
    """The start time of ``pid`` in clock ticks since boot (``/proc/PID/stat`` field 22);
    "" when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds (or wants) a stack's lock."""

    token: str
    host: str
    boot: str
    pid: int
    pid_start: str
    user: str
    command: str
    since: float  # seconds since the epoch, by the holder's clock

    @classmethod
    def me(cls, command: str) -> Holder:
        """This process, about to run ``command``."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid())
        pid = os.getpid()
        return cls(
            token=uuid.uuid4().hex,
            host=os.uname().nodename,
            boot=_boot_id(),
            pid=pid,
            pid_start=_process_start(pid),
            user=user,
            command=command,
            since=round(time.time(), 3),  # as the label keeps it
        )

    def labels(self, stack: str) -> dict[str, str]:
        """The labels of the lock volume."""
        return {
            LOCK_LABEL: stack,
            _TOKEN: self.token,
            _HOST: self.host,
            _BOOT: self.boot,
            _PID: str(self.pid),
            _PID_START: self.pid_start,
            _USER: self.user,
            _COMMAND: self.command,
            _SINCE: f"{self.since:.3f}",
        }

    @classmethod
    def from_labels(cls, labels: dict[str, str] | VolumeSummary) -> Holder:
        """The holder a lock volume's labels describe (blank fields where they say nothing)."""
        found = dict(labels.labels) if isinstance(labels, VolumeSummary) else labels
        try:
            pid = int(found.get(_PID, "0"))
        except ValueError:
            pid = 0
        try:
            since = float(found.get(_SINCE, "0"))
        except ValueError:
            since = 0.0
        return cls(
            token=found.get(_TOKEN, ""),
            host=found.get(_HOST, ""),
            boot=found.get(_BOOT, ""),
            pid=pid,
            pid_start=found.get(_PID_START, ""),
            user=found.get(_USER, ""),
            command=found.get(_COMMAND, "?"),
            since=since,
        )

    def describe(self, now: float | None = None) -> str:
        """``'declarun apply' (pid 4242 on host box, user root) since 12:00:03, 5 s ago``."""
        when = datetime.fromtimestamp(self.since).strftime("%H:%M:%S")
        ago = max(0, int((now if now is not None else time.time()) - self.since))
        return (
            f"'declarun {self.command}' (pid {self.pid} on host {self.host or '?'}, user "
            f"{self.user or '?'}) since {when}, {ago} s ago"
        )

    def local(self) -> bool:
        """True when it runs (or ran) on this machine since its last boot."""
        return bool(self.boot) and self.host == os.uname().nodename and self.boot == _boot_id()


def _volume(engine: Engine, name: str) -> VolumeSummary | None:
    for volume in engine.list_volumes():
        if volume.name == name:
            return volume
    return None


def _create(engine: Engine, name: str, labels: dict[str, str]) -> VolumeSummary | None:
    """Create volume ``name``; the volume the engine holds under it (None if it vanished)."""
    try:
        return engine.create_volume({"Name": name, "Driver": "local", "Labels": labels})
    except Conflict:
        return _volume(engine, name)


def _remove(engine: Engine, name: str) -> None:
    with suppress(NotFound, Conflict):
        engine.remove_volume(name)


def _beats(engine: Engine, token: str) -> list[VolumeSummary]:
    return [v for v in engine.list_volumes() if v.labels.get(_BEAT) == token]


def _stale_because(engine: Engine, holder: Holder, now: float) -> str | None:
    """Why ``holder``'s lock is stale, or None while its holder may live."""
    if holder.local():
        if _process_start(holder.pid) != holder.pid_start or not holder.pid_start:
            return f"its process (pid {holder.pid}) is gone"
        return None
    last = holder.since
    for beat in _beats(engine, holder.token):
        with suppress(ValueError):
            last = max(last, float(beat.labels.get(f"{_BEAT}.at", "0")))
    if now - last > EXPIRY:
        return f"it has given no sign of life for {int(now - last)} s"
    return None


def _take_over(engine: Engine, stack: str, stale: Holder, me: Holder) -> None:
    """Remove ``stale``'s lock, unless another process is already doing so."""
    claim_name = f"{lock_volume_name(stack)}.takeover.{stale.token[:16]}"
    labels = {**me.labels(stack), LOCK_LABEL: f"{stack}.takeover"}
    claim = _create(engine, claim_name, labels)
    if claim is None:
        return
    if claim.labels.get(_TOKEN) != me.token:
        if time.time() - Holder.from_labels(claim).since > CLAIM_TIMEOUT:
            _remove(engine, claim_name)  # its winner died halfway: let someone try again
        return
    try:
        current = _volume(engine, lock_volume_name(stack))
        if current is not None and current.labels.get(_TOKEN) == stale.token:
            _remove(engine, lock_volume_name(stack))
        for beat in _beats(engine, stale.token):
            _remove(engine, beat.name)
    finally:
        _remove(engine, claim_name)


class _Heartbeat:
    """A thread that keeps showing the holder is alive until :meth:`stop`."""

    def __init__(self, engine: Engine, stack: str, holder: Holder, every: float) -> None:
        self.engine, self.stack, self.holder, self.every = engine, stack, holder, every
        self.stopped = threading.Event()
        self.previous: str | None = None
        self.thread = threading.Thread(target=self._run, name="declarun-lock-beat", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        count = 0
        while not self.stopped.wait(self.every):
            count += 1
            name = f"{lock_volume_name(self.stack)}.beat.{self.holder.token[:16]}.{count}"
            labels = {_BEAT: self.holder.token, f"{_BEAT}.at": f"{time.time():.3f}"}
            try:
                _create(self.engine, name, labels)
                if self.previous is not None:
                    _remove(self.engine, self.previous)
                self.previous = name
            except ErrorKind:
                pass  # the engine is busy or restarting: the next beat tries again

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)
        for beat in _beats(self.engine, self.holder.token):
            _remove(self.engine, beat.name)


def _acquire(
    engine: Engine,
    stack: str,
    me: Holder,
    timeout: float,
    on_wait: Callable[[str], None] | None,
) -> None:
    deadline = time.monotonic() + timeout
    told: str | None = None
    name = lock_volume_name(stack)
    while True:
        found = _create(engine, name, me.labels(stack))
        if found is not None and found.labels.get(_TOKEN) == me.token:
            return
        if found is None:
            continue  # removed between our create and our look: try again at once
        holder = Holder.from_labels(found)
        now = time.time()
        stale = _stale_because(engine, holder, now)
        if stale is not None:
            if on_wait is not None:
                on_wait(f"Taking over the lock of stack '{stack}' from {holder.describe(now)}: "
                        f"{stale}.")  # fmt: skip
            _take_over(engine, stack, holder, me)
            continue
        if time.monotonic() >= deadline:
            waited = "" if timeout <= 0 else f" (waited {timeout:.0f} s)"
            raise StackLocked(
                f"stack '{stack}' is locked on this engine by {holder.describe(now)}{waited}: "
                "another declarun is changing it; try again when it is done, or wait for it "
                "with --lock-timeout DURATION"
            )
        if on_wait is not None and told != holder.token:
            told = holder.token
            on_wait(
                f"Stack '{stack}' is locked by {holder.describe(now)}; waiting for it "
                f"(up to {timeout:.0f} s; --lock-timeout 0 not to wait)."
            )
        time.sleep(min(_RETRY, max(0.0, deadline - time.monotonic())) or 0.05)


def _release(engine: Engine, stack: str, me: Holder) -> None:
    current = _volume(engine, lock_volume_name(stack))
    if current is not None and current.labels.get(_TOKEN) == me.token:
        _remove(engine, lock_volume_name(stack))


@contextmanager
def hold_stack_lock(
    engine: Engine,
    stack: str,
    command: str,
    *,
    timeout: float = DEFAULT_LOCK_TIMEOUT,
    on_wait: Callable[[str], None] | None = None,
    heartbeat: float = HEARTBEAT,
) -> Iterator[Holder]:
    """Hold the lock of ``stack`` on ``engine`` for the ``with`` block, as ``command``.

    Waits up to ``timeout`` seconds for another holder (0: not at all), telling ``on_wait``
    once per holder; raises :class:`StackLocked` naming the holder when it cannot have it.
    A stale lock is taken over (``on_wait`` is told). Engine refusals are raised as kinds.
    """
    me = Holder.me(command or os.path.basename(sys.argv[0]))
    _acquire(engine, stack, me, timeout, on_wait)
    beat = _Heartbeat(engine, stack, me, heartbeat)
    beat.start()
    try:
        yield me
    finally:
        beat.stop()
        with suppress(ErrorKind):
            _release(engine, stack, me)
