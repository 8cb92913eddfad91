"""The local volume driver: named directories under ``<data-root>/volumes`` that outlive
containers, described in the metadata database.

Layout, one directory per volume (the same as dockerd's ``local`` driver)::

    <data-root>/volumes/<name>/_data        the volume's content (the Mountpoint)

The description of a volume (name, driver, creation time, labels, options) is a row of
the metadata database's ``volumes`` table (:mod:`declarun.daemon.metadata.volumes`), which
also answers which containers use a volume -- so removal refuses a volume in use with
dockerd's message, in the same transaction that deletes it. Creating a volume inserts its
row and renames its prepared directory into place in one transaction; removing one
deletes the row and renames the directory aside (``.removing-<hex>-<name>``) in one
transaction, then deletes it. A daemon killed half-way leaves at worst a stray directory,
which :func:`interrupted_work` finds and the next start settles: a ``.tmp-*`` (a create)
is deleted; a ``.removing-*`` goes back into place when the volume's row is still there
(the removal's transaction never committed: the volume keeps its data), else it is
deleted.

Data roots written before volumes moved into the database kept the description in
``<name>/volume.json``; opening the store imports each such file once and removes it.

Driver options of the local driver (``type``, ``device``, ``o``) describe a file system
to mount on ``_data`` (``type=tmpfs o=size=64m``, ``type=none o=bind device=/path``);
the mount is made when a container first needs the volume and undone on removal. Without
options a volume is a plain directory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import re
import secrets
import shutil
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from declarun.daemon import failpoints
from declarun.daemon.metadata import Metadata, VolumeRow
from declarun.errdefs import Conflict, InvalidArgument, NotFound, SystemFailure

__all__ = [
    "ANONYMOUS_LABEL",
    "Leftover",
    "Volume",
    "VolumeStore",
    "check_volume_name",
    "disk_usage",
    "interrupted_work",
]

log = logging.getLogger("declarun.daemon.volumes")

#: The label dockerd (23+) puts on anonymous volumes; prune only takes these by default.
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
_OLD_META = "volume.json"  # where data roots before the metadata database kept a volume
_DATA = "_data"
_LOCAL_OPTS = frozenset({"type", "device", "o"})
_REMOVING = ".removing-"
_TOKEN_HEX = 16


@dataclass(frozen=True)
class Leftover:
    """A directory an interrupted create or removal left under the volumes root.

    ``restore`` names the volume it goes back to (a removal that never committed);
    ``None``: it is deleted.
    """

    path: Path
    restore: str | None

    def settle(self) -> None:
        """Put it back, or delete it (blocking)."""
        if self.restore is not None:
            os.rename(self.path, self.path.parent / self.restore)
            log.warning("volume %s: its removal was cut short; it keeps its data", self.restore)
        else:
            shutil.rmtree(self.path, ignore_errors=True)


def interrupted_work(root: Path, metadata: Metadata) -> list[Leftover]:
    """The directories interrupted creates and removals left under ``root``."""
    found: list[Leftover] = []
    for entry in sorted(root.glob(".*")):
        if entry.name.startswith(".tmp-"):
            found.append(Leftover(entry, None))
        elif entry.name.startswith(_REMOVING):
            name = entry.name[len(_REMOVING) + _TOKEN_HEX + 1 :]
            keep = (
                _NAME.fullmatch(name) is not None
                and metadata.get_volume(name) is not None
                and not (root / name).exists()
            )
            found.append(Leftover(entry, name if keep else None))
    return found


def check_volume_name(name: str) -> str:
    """``name`` if it is a valid local volume name, else InvalidArgument with dockerd's
    message."""
    if not _NAME.fullmatch(name):
        raise InvalidArgument(
            f'create {name}: "{name}" includes invalid characters for a local volume name, '
            'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            "directory, use absolute path"
        )
    return name


@dataclass(frozen=True)
class Volume:
    """One volume as ``GET /volumes/{name}`` describes it."""

    name: str
    mountpoint: Path
    created_at: str
    driver: str = "local"
    labels: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)

    @property
    def anonymous(self) -> bool:
        """Created for a container without a name (``-v /path``, image VOLUME)."""
        return ANONYMOUS_LABEL in self.labels

    def to_api(self) -> dict[str, Any]:
        """The Swagger ``Volume`` object."""
        return {
            "CreatedAt": self.created_at,
            "Driver": self.driver,
            "Labels": dict(self.labels),
            "Mountpoint": str(self.mountpoint),
            "Name": self.name,
            "Options": dict(self.options) or None,
            "Scope": "local",
        }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _is_mountpoint(path: Path) -> bool:
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as info:
            target = str(path)
            return any(line.split()[4] == target for line in info if len(line.split()) > 4)
    except OSError:
        return False


class VolumeStore:
    """The local volume driver: create, look up, list, remove volumes under ``root``."""

    def __init__(self, metadata: Metadata, root: Path) -> None:
        self.metadata = metadata
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Creation and removal of one name must not interleave (two `docker run -v x:/x`).
        self._lock = threading.RLock()
        for leftover in interrupted_work(self.root, metadata):
            leftover.settle()
        self._import_old_descriptions()

    def users(self, name: str) -> list[str]:
        """IDs of the containers whose mounts use volume ``name`` (a metadata query)."""
        return self.metadata.volume_users(name)

    def path(self, name: str) -> Path:
        """The Mountpoint of volume ``name`` (whether or not it exists)."""
        return self.root / name / _DATA

    def name_of(self, host_path: str) -> str | None:
        """The volume whose data directory holds ``host_path``, if any."""
        try:
            relative = Path(host_path).relative_to(self.root)
        except ValueError:
            return None
        parts = relative.parts
        if len(parts) >= 2 and parts[1] == _DATA and _NAME.fullmatch(parts[0]):
            return parts[0]
        return None

    def _volume(self, row: VolumeRow) -> Volume:
        return Volume(
            name=row.name,
            mountpoint=self.path(row.name),
            created_at=row.created_at,
            driver=row.driver,
            labels=dict(row.labels),
            options=dict(row.options),
        )

    def _read(self, name: str) -> Volume | None:
        row = self.metadata.get_volume(name)
        return None if row is None else self._volume(row)

    def find(self, name: str) -> Volume | None:
        """Volume ``name``, or ``None`` when there is none."""
        return self._read(name) if _NAME.fullmatch(name) else None

    def get(self, name: str) -> Volume:
        """Volume ``name``; NotFound ``get NAME: no such volume``."""
        volume = self._read(name) if _NAME.fullmatch(name) else None
        if volume is None:
            raise NotFound(f"get {name}: no such volume")
        return volume

    def list(self) -> list[Volume]:
        """Every volume, by name."""
        return [self._volume(row) for row in self.metadata.list_volumes()]

    def create(
        self,
        name: str = "",
        *,
        driver: str = "local",
        options: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> tuple[Volume, bool]:
        """Create a volume (a random 64-hex name when ``name`` is empty).

        Returns the volume and whether it is new; creating an existing name returns it
        unchanged, as dockerd does.
        """
        if driver not in ("", "local"):
            raise NotFound(f'error looking up volume plugin {driver}: plugin "{driver}" not found')
        options = dict(options or {})
        for key in options:
            if key not in _LOCAL_OPTS:
                raise InvalidArgument(f"invalid option key: {key!r}")
        if options and "type" not in options and "device" not in options:
            raise InvalidArgument('missing required option: "type"')
        anonymous = not name
        name = name or secrets.token_hex(32)
        check_volume_name(name)
        with self._lock, self.metadata.transaction():
            existing = self._read(name)
            if existing is not None:
                return existing, False
            all_labels = dict(labels or {})
            if anonymous:
                all_labels.setdefault(ANONYMOUS_LABEL, "")
            row = VolumeRow(name, "local", _now(), all_labels, options)
            staging = self.root / f".tmp-{secrets.token_hex(8)}"
            staging.mkdir(mode=0o701)
            try:
                (staging / _DATA).mkdir(mode=0o755)
                self.metadata.add_volume(row)
                os.rename(staging, self.root / name)
            except OSError as exc:  # the transaction rolls back: no row without its directory
                shutil.rmtree(staging, ignore_errors=True)
                if (self.root / name).exists():
                    # Someone else (a leftover directory without a record) holds the name.
                    raise Conflict(f"create {name}: volume directory already exists") from None
                raise SystemFailure(f"create {name}: {exc.strerror or exc}") from None
            log.info("created volume %s", name)
            return self._volume(row), True

    def mount(self, name: str, subpath: str = "") -> Path:
        """The host directory to bind for volume ``name``; mounts its file system if any."""
        volume = self.get(name)
        data = volume.mountpoint
        if volume.options.get("type") or volume.options.get("device"):
            with self._lock:
                if not _is_mountpoint(data):
                    self._mount_fs(volume)
        if subpath:
            cleaned = posixpath.normpath(subpath)
            if cleaned.startswith("..") or posixpath.isabs(cleaned):
                raise InvalidArgument(f"invalid volume subpath: {subpath}")
            target = data / cleaned
            # The subpath must stay inside the volume even through symlinks.
            if not str(target.resolve()).startswith(str(data.resolve()) + os.sep):
                raise InvalidArgument(f"volume subpath {subpath} resolves outside the volume")
            if not target.exists():
                raise InvalidArgument(f"cannot access path {subpath} in volume {name}: not found")
            return target
        return data

    def _mount_fs(self, volume: Volume) -> None:
        opts = volume.options
        kind = opts.get("type", "")
        device = opts.get("device", "") or kind or "none"
        args = ["mount"]
        if kind and kind != "none":
            args += ["-t", kind]
        if opts.get("o"):
            args += ["-o", opts["o"]]
        args += [device, str(volume.mountpoint)]
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            why = done.stderr.strip() or f"mount exited with {done.returncode}"
            raise SystemFailure(f"error while mounting volume '{volume.mountpoint}': {why}")

    def unmount(self, name: str) -> None:
        """Undo the file-system mount of a volume with driver options (if mounted)."""
        data = self.path(name)
        if _is_mountpoint(data):
            with contextlib.suppress(OSError):
                subprocess.run(["umount", "-l", str(data)], capture_output=True, check=False)

    def remove(self, name: str, *, force: bool = False) -> None:
        """Remove a volume and its data; Conflict while a container uses it, NotFound if missing.

        ``force`` only makes a missing volume no error (dockerd never removes one in use).
        """
        with self._lock:
            if self._read(name) is None:
                if force:
                    return
                raise NotFound(f"get {name}: no such volume")
            self._refuse_in_use(name)
            self.unmount(name)
            aside = self.root / f"{_REMOVING}{secrets.token_hex(_TOKEN_HEX // 2)}-{name}"
            doomed: Path | None = aside
            with self.metadata.transaction():
                self._refuse_in_use(name)  # a container may have taken it up meanwhile
                self.metadata.delete_volume(name)
                try:
                    os.rename(self.root / name, aside)
                    failpoints.hit("volume-remove-midway")
                except FileNotFoundError:  # its directory was deleted by hand: the row goes
                    doomed = None
                except OSError as exc:  # the transaction rolls back: the volume stays whole
                    raise SystemFailure(f"remove {name}: {exc.strerror or exc}") from None
            if doomed is not None:
                shutil.rmtree(doomed, ignore_errors=True)
            log.info("removed volume %s", name)

    def _refuse_in_use(self, name: str) -> None:
        users = self.users(name)
        if users:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")

    # -- data roots from before the metadata database held volumes --------------------------

    def _import_old_descriptions(self) -> None:
        """Move every ``<name>/volume.json`` into the database (once; the file then goes)."""
        found = sorted(self.root.glob(f"*/{_OLD_META}"))
        if not found:
            return
        imported: list[Path] = []
        with self.metadata.transaction():
            for meta in found:
                row = _old_description(meta)
                if row is None:
                    log.warning("volume description %s is unreadable; left as it is", meta)
                    continue
                if self.metadata.add_volume(row):
                    log.info("imported volume %s into the metadata database", row.name)
                imported.append(meta)
        for meta in imported:
            meta.unlink(missing_ok=True)


def _old_description(meta: Path) -> VolumeRow | None:
    """The row for a ``volume.json`` of an older data root, as that code read it."""
    name = meta.parent.name
    if not _NAME.fullmatch(name):
        return None
    try:
        doc = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict):
        return None
    try:
        labels = {str(k): str(v) for k, v in (doc.get("Labels") or {}).items()}
        options = {str(k): str(v) for k, v in (doc.get("Options") or {}).items()}
    except AttributeError:  # not objects: unreadable, as the old code found it
        return None
    return VolumeRow(
        name=name,
        driver=str(doc.get("Driver", "local")),
        created_at=str(doc.get("CreatedAt", "")),
        labels=labels,
        options=options,
    )


def disk_usage(volume: Volume) -> int:
    """Bytes the volume's content takes on disk (hard links counted once; blocking)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for path in [volume.mountpoint, *volume.mountpoint.rglob("*")]:
        try:
            st = path.lstat()
        except OSError:
            continue
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512 if path != volume.mountpoint else 0
    return total
