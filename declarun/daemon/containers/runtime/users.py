"""``User`` of a container resolved to numeric IDs through the image's passwd and group files.

Rules are runc's/dockerd's ``GetExecUser``: ``name``, ``uid``, ``name:group``, ``uid:gid``;
a name must exist in the image, a number need not; without an explicit group, the primary
group comes from passwd and supplementary groups from ``/etc/group`` membership; ``HOME``
from passwd (``/`` when unknown). Files are read with :mod:`~declarun.daemon.containers.rootfs.inroot`, never outside the root.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from declarun.daemon.containers.config.errors import UnknownUserError
from declarun.daemon.containers.rootfs.inroot import read_file_in_root

__all__ = ["GroupEntry", "PasswdEntry", "ResolvedUser", "UnknownUserError", "resolve_user"]

_MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class PasswdEntry:
    """One line of ``/etc/passwd``."""

    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class GroupEntry:
    """One line of ``/etc/group``."""

    name: str
    gid: int
    members: tuple[str, ...]


@dataclass(frozen=True)
class ResolvedUser:
    """What the OCI ``process.user`` needs, plus HOME for the environment."""

    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


def _lines(data: bytes | None) -> Iterable[list[str]]:
    for line in (data or b"").decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield line.split(":")


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() and int(text) <= _MAX_ID else None


def parse_passwd(data: bytes | None) -> list[PasswdEntry]:
    """Entries of a passwd file; malformed lines are skipped, as libc does."""
    entries = []
    for f in _lines(data):
        if len(f) >= 7 and (uid := _int(f[2])) is not None and (gid := _int(f[3])) is not None:
            entries.append(PasswdEntry(f[0], uid, gid, f[5]))
    return entries


def parse_group(data: bytes | None) -> list[GroupEntry]:
    """Entries of a group file; malformed lines are skipped."""
    entries = []
    for f in _lines(data):
        if len(f) >= 4 and (gid := _int(f[2])) is not None:
            entries.append(GroupEntry(f[0], gid, tuple(m for m in f[3].split(",") if m)))
    return entries


def _numeric(text: str) -> int | None:
    if not text.isdigit():
        return None
    value = int(text)
    if value > _MAX_ID:
        raise UnknownUserError("uids and gids must be in range 0-2147483647")
    return value


def _lookup_group(spec: str, groups: list[GroupEntry]) -> int:
    for entry in groups:
        if entry.name == spec:
            return entry.gid
    number = _numeric(spec)
    if number is None:
        raise UnknownUserError(f"unable to find group {spec}: no matching entries in group file")
    return number


def resolve_user(rootfs: Path, spec: str, group_add: Iterable[str] = ()) -> ResolvedUser:
    """Resolve ``spec`` (Docker's ``User``) and ``group_add`` (``GroupAdd``) inside ``rootfs``.

    Raises :class:`UnknownUserError` with Docker's text, e.g. ``unable to find user app:
    no matching entries in passwd file``.
    """
    passwd = parse_passwd(read_file_in_root(rootfs, "/etc/passwd"))
    groups = parse_group(read_file_in_root(rootfs, "/etc/group"))
    user_part, has_group, group_part = (spec or "0").partition(":")
    user_part = user_part or "0"
    number = _numeric(user_part)
    # A name wins over a number that looks the same, as in runc (names are checked first).
    found = next((e for e in passwd if e.name == user_part), None)
    if found is None and number is not None:
        found = next((e for e in passwd if e.uid == number), None)
    if found is None and number is None:
        raise UnknownUserError(
            f"unable to find user {user_part}: no matching entries in passwd file"
        )
    uid = found.uid if found else number or 0
    gid = found.gid if found else 0
    home = found.home if found and found.home else "/"
    additional: list[int] = []
    if has_group and group_part:
        gid = _lookup_group(group_part, groups)
    elif found is not None:
        additional = [g.gid for g in groups if found.name in g.members]
    for extra in group_add:
        additional.append(_lookup_group(extra, groups))
    return ResolvedUser(uid, gid, tuple(dict.fromkeys(additional)), home)
