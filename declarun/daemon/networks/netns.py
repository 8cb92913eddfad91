"""Persistent named network namespaces: ``<run-dir>/netns/<name>`` bind mounts.

A container's network namespace must outlive any single process: it is created before the
container starts (so CNI plugins can set it up and runc can join it by path) and torn down
after the container is gone. As ``ip netns add`` does, a namespace is kept alive by
bind-mounting its ``nsfs`` file onto an empty file in a directory that is a *shared* mount
point, so the unmount at removal propagates to mount namespaces that copied it meanwhile.

How the namespace is made: Python 3.11 has no ``os.unshare``/``os.setns``, and forking a
multi-threaded daemon is unsafe, so a **dedicated short-lived thread** calls ``unshare``
(``CLONE_NEWNET`` is per thread on Linux and allowed in a multi-threaded process) through
ctypes, bind-mounts ``/proc/thread-self/ns/net`` and exits; the process's other threads
never change namespace. No ``ip`` binary is executed, which keeps container start fast.
:func:`run_in_netns` uses the same trick with ``setns`` to run code inside a namespace
(the embedded DNS opens its sockets that way).
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from declarun.daemon.networks.errors import NetnsError

__all__ = [
    "NETNS_DIRNAME",
    "create_netns",
    "ensure_netns_dir",
    "list_netns",
    "netns_dir",
    "no_netns",
    "release_netns_dir",
    "remove_netns",
    "run_in_netns",
]

NETNS_DIRNAME = "netns"

_CLONE_NEWNET = 0x40000000
_MS_BIND = 4096
_MS_REC = 16384
_MS_SHARED = 1 << 20
_MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)
_T = TypeVar("_T")


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str, target: str, fstype: str | None, flags: int) -> None:
    _check(
        _libc.mount(
            source.encode(), target.encode(), fstype.encode() if fstype else None, flags, None
        ),
        f"mount {target}",
    )


def _umount(target: str) -> None:
    _check(_libc.umount2(target.encode(), _MNT_DETACH), f"umount {target}")


def _in_thread(func: Callable[[], _T]) -> _T:
    """Run ``func`` in a fresh thread that ends afterwards (so its namespace dies with it)."""
    box: dict[str, object] = {}

    def body() -> None:
        try:
            box["value"] = func()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=body, name="declarun-netns", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def netns_dir(run_dir: Path) -> Path:
    """The directory holding the namespaces of a daemon whose run dir is ``run_dir``."""
    return run_dir / NETNS_DIRNAME


def ensure_netns_dir(run_dir: Path) -> Path:
    """Create ``<run_dir>/netns`` and make it a shared mount point (as ``ip netns`` does).

    Idempotent. Returns the directory.
    """
    directory = netns_dir(run_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o755)
    target = str(directory)
    try:
        _mount("none", target, None, _MS_SHARED | _MS_REC)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise NetnsError(f"cannot prepare {directory}: {exc.strerror}") from None
        # EINVAL: not a mount point yet; bind it onto itself first.
        try:
            _mount(target, target, "none", _MS_BIND | _MS_REC)
            _mount("none", target, None, _MS_SHARED | _MS_REC)
        except OSError as inner:
            raise NetnsError(f"cannot prepare {directory}: {inner.strerror}") from None
    return directory


def release_netns_dir(run_dir: Path) -> None:
    """Undo :func:`ensure_netns_dir`'s self bind mount (tests and full teardown only)."""
    directory = netns_dir(run_dir)
    # os.path.ismount cannot see a bind mount of a directory onto itself: just try.
    try:
        _umount(str(directory))
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOENT):
            raise NetnsError(f"cannot unmount {directory}: {exc.strerror}") from None


def create_netns(run_dir: Path, name: str) -> Path:
    """Create a new, empty network namespace pinned at ``<run_dir>/netns/<name>``.

    Only ``lo`` (down) exists in it. Raises :class:`NetnsError` if ``name`` is taken or
    the kernel refuses; nothing is left behind on failure.
    """
    if not name or "/" in name or name in (".", ".."):
        raise NetnsError(f"invalid network namespace name {name!r}")
    directory = ensure_netns_dir(run_dir)
    path = directory / name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444)
    except FileExistsError:
        raise NetnsError(f"network namespace {name} already exists") from None
    os.close(fd)

    def make() -> None:
        _check(_libc.unshare(_CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        _mount("/proc/thread-self/ns/net", str(path), "none", _MS_BIND)

    try:
        _in_thread(make)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise NetnsError(f"cannot create network namespace {name}: {exc.strerror}") from None
    return path


def remove_netns(path: Path) -> None:
    """Unmount and delete a namespace file; the namespace dies with its last user.

    Idempotent: a missing file or a file that is no longer a mount point is fine.
    """
    try:
        _umount(str(path))
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOENT):
            raise NetnsError(f"cannot unmount {path}: {exc.strerror}") from None
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise NetnsError(f"cannot remove {path}: {exc.strerror}") from None


def list_netns(run_dir: Path) -> list[Path]:
    """Every namespace file under ``<run_dir>/netns`` (leftovers after a crash included)."""
    directory = netns_dir(run_dir)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file())


def no_netns(run_dir: Path) -> bool:
    """Whether ``<run_dir>/netns`` holds no namespace file: :func:`list_netns` is empty.

    Asked after every container's namespace is removed, so it stops at the first file
    instead of listing (and stat'ing) the namespaces of every running container.
    """
    try:
        scan = os.scandir(netns_dir(run_dir))
    except (FileNotFoundError, NotADirectoryError):
        return True
    with scan:
        return not any(Path(entry.path).is_file() for entry in scan)


def run_in_netns(path: Path, func: Callable[[], _T]) -> _T:
    """Call ``func`` inside the network namespace at ``path`` and return its result.

    It runs in a dedicated thread that joins the namespace and then ends, so sockets it
    opens belong to that namespace while the caller's threads stay where they are.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise NetnsError(f"cannot open network namespace {path}: {exc.strerror}") from None

    def enter_and_call() -> _T:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            reason = os.strerror(ctypes.get_errno())
            raise NetnsError(f"cannot enter network namespace {path}: {reason}")
        return func()

    try:
        return _in_thread(enter_and_call)
    finally:
        os.close(fd)
