"""Mounts of a create request: ``HostConfig.Binds``, ``Mounts`` and ``Tmpfs`` as one typed list.

Messages follow Docker's mount parser (``invalid mount config for type "bind": ...``,
``invalid volume specification: '...'``, ``Duplicate mount point: ...``).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from declarun.daemon.containers.config.errors import InvalidCreateRequest
from declarun.daemon.containers.config.fields import (
    get_bool,
    get_int,
    get_object,
    get_str,
    get_str_map,
)
from declarun.frozen import FrozenDict

__all__ = ["MountSpec", "parse_binds", "parse_mounts", "parse_tmpfs"]

MountType = Literal["bind", "volume", "tmpfs"]
_VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
_PROPAGATIONS = frozenset({"private", "rprivate", "shared", "rshared", "slave", "rslave"})
_TMPFS_FLAGS = frozenset(
    {
        "rw", "ro", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "sync", "async",
        "dirsync", "atime", "noatime", "diratime", "nodiratime", "relatime", "norelatime",
        "strictatime", "nostrictatime",
    }
)  # fmt: skip
_TMPFS_KEYS = frozenset({"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"})


@dataclass(frozen=True)
class MountSpec:
    """One mount as the user asked for it.

    ``source`` is a host path for ``bind``, a volume name for ``volume`` (empty: an
    anonymous volume the caller names) and empty for ``tmpfs``. ``origin`` says which
    request field it came from, so inspect can render it back there.
    """

    type: MountType
    target: str
    source: str = ""
    read_only: bool = False
    origin: Literal["Binds", "Mounts", "Tmpfs"] = "Mounts"
    propagation: str = "rprivate"
    non_recursive: bool = False
    #: Binds (and CreateMountpoint) create a missing host directory, as Docker does.
    create_source: bool = False
    #: ``z``/``Z`` accepted and kept for inspect; there is no SELinux to relabel for.
    selinux_label: str = ""
    no_copy: bool = False
    volume_driver: str = "local"
    volume_labels: FrozenDict[str, str] = field(default_factory=FrozenDict)
    volume_options: FrozenDict[str, str] = field(default_factory=FrozenDict)
    subpath: str = ""
    #: tmpfs mount options (``size=``, ``mode=``, flags), Docker's defaults not included.
    tmpfs_options: tuple[str, ...] = ()
    raw: str = ""

    def mode_string(self) -> str:
        """The ``Mode`` of Docker's inspect ``Mounts`` entry (``ro``/``z``/... joined)."""
        parts = [p for p in (self.selinux_label, "ro" if self.read_only else "") if p]
        return ",".join(parts)


def _mount_error(kind: str, detail: str) -> InvalidCreateRequest:
    return InvalidCreateRequest(f'invalid mount config for type "{kind}": {detail}')


def _check_target(kind: str, target: str) -> str:
    if not target:
        raise _mount_error(kind, "field Target must not be empty")
    if not posixpath.isabs(target):
        raise _mount_error(kind, f"invalid mount path: '{target}' mount path must be absolute")
    cleaned = posixpath.normpath(target)
    if cleaned == "/":
        raise _mount_error(kind, "invalid specification: destination can't be '/'")
    return cleaned


def _check_volume_name(name: str) -> None:
    if not _VOLUME_NAME.fullmatch(name):
        raise InvalidCreateRequest(
            f'"{name}" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            "directory, use absolute path"
        )


def _parse_bind_mode(mode: str) -> dict[str, Any]:
    """``ro,z,rslave,nocopy`` → fields; Docker's ``invalid mode: X`` when malformed."""
    out: dict[str, Any] = {}
    seen: set[str] = set()
    value: str | bool
    for item in mode.split(",") if mode else []:
        if item in ("ro", "rw"):
            group, value = "rw", item == "ro"
            key = "read_only"
        elif item in ("z", "Z"):
            group, key, value = "label", "selinux_label", item
        elif item in _PROPAGATIONS:
            group, key, value = "prop", "propagation", item
        elif item == "nocopy":
            group, key, value = "nocopy", "no_copy", True
        else:
            raise InvalidCreateRequest(f"invalid mode: {mode}")
        if group in seen:
            raise InvalidCreateRequest(f"invalid mode: {mode}")
        seen.add(group)
        out[key] = value
    return out


def parse_binds(binds: tuple[str, ...]) -> list[MountSpec]:
    """``HostConfig.Binds``: ``[src:]dst[:mode]``; an absolute src is a bind, else a volume."""
    specs: list[MountSpec] = []
    for raw in binds:
        parts = raw.split(":")
        if not parts[0] or len(parts) > 3:
            raise InvalidCreateRequest(f"invalid volume specification: '{raw}'")
        mode = parts[2] if len(parts) == 3 else ""
        if len(parts) == 1:
            source, target = "", parts[0]
        else:
            source, target = parts[0], parts[1]
        options = _parse_bind_mode(mode)
        kind: MountType = "bind" if posixpath.isabs(source) else "volume"
        try:
            target = _check_target(kind, target)
        except InvalidCreateRequest as exc:
            raise InvalidCreateRequest(f"invalid volume specification: '{raw}': {exc}") from None
        if kind == "volume":
            if source:
                _check_volume_name(source)
            if "propagation" in options:
                raise InvalidCreateRequest(f"invalid volume specification: '{raw}'")
        elif options.get("no_copy"):
            raise InvalidCreateRequest(f"invalid volume specification: '{raw}'")
        specs.append(
            MountSpec(
                type=kind,
                target=target,
                source=posixpath.normpath(source) if kind == "bind" else source,
                origin="Binds",
                create_source=kind == "bind",
                raw=raw,
                **options,
            )
        )
    return specs


def _forbid(kind: str, body: Mapping[str, Any], *keys: str) -> None:
    for key in keys:
        if body.get(key) is not None:
            raise _mount_error(kind, f"field {key} must not be specified")


def _tmpfs_options_from_mount(opts: Mapping[str, Any]) -> tuple[str, ...]:
    size = get_int(opts, "SizeBytes", field="TmpfsOptions.SizeBytes")
    mode = get_int(opts, "Mode", field="TmpfsOptions.Mode")
    if size < 0:
        raise _mount_error("tmpfs", "invalid tmpfs size: must not be negative")
    if mode < 0 or mode > 0o7777:
        raise _mount_error("tmpfs", f"invalid tmpfs mode: {mode}")
    out: list[str] = []
    if size:
        out.append(f"size={size}")
    if mode:
        out.append(f"mode={mode:o}")
    return tuple(out)


def parse_mounts(
    mounts: Any, path_exists: Callable[[str], bool] = os.path.exists
) -> list[MountSpec]:
    """``HostConfig.Mounts`` (the ``--mount`` form): typed, with Docker's checks."""
    if mounts is None:
        return []
    if not isinstance(mounts, list):
        raise InvalidCreateRequest("invalid value for Mounts: expected a list")
    specs: list[MountSpec] = []
    for item in mounts:
        if not isinstance(item, Mapping):
            raise InvalidCreateRequest("invalid value for Mounts: expected a list of objects")
        kind = get_str(item, "Type", field="Mounts.Type")
        source = get_str(item, "Source", field="Mounts.Source")
        read_only = get_bool(item, "ReadOnly", field="Mounts.ReadOnly")
        if kind not in ("bind", "volume", "tmpfs"):
            raise _mount_error(kind, "mount type unknown")
        target = _check_target(kind, get_str(item, "Target", field="Mounts.Target"))
        if kind == "bind":
            _forbid(kind, item, "VolumeOptions", "TmpfsOptions")
            bind = get_object(item, "BindOptions", "Mounts.BindOptions")
            create = get_bool(bind, "CreateMountpoint", field="BindOptions.CreateMountpoint")
            propagation = get_str(bind, "Propagation", "rprivate", "BindOptions.Propagation")
            if not source:
                raise _mount_error(kind, "field Source must not be empty")
            if not posixpath.isabs(source):
                raise _mount_error(
                    kind, f"invalid mount path: '{source}' mount path must be absolute"
                )
            if not create and not path_exists(source):
                raise _mount_error(kind, f"bind source path does not exist: {source}")
            if propagation not in _PROPAGATIONS:
                raise _mount_error(kind, f"invalid propagation mode: {propagation}")
            specs.append(
                MountSpec(
                    type="bind", target=target, source=posixpath.normpath(source),
                    read_only=read_only, propagation=propagation, create_source=create,
                    non_recursive=get_bool(bind, "NonRecursive", field="BindOptions.NonRecursive"),
                )
            )  # fmt: skip
        elif kind == "volume":
            _forbid(kind, item, "BindOptions", "TmpfsOptions")
            vol = get_object(item, "VolumeOptions", "Mounts.VolumeOptions")
            driver = get_object(vol, "DriverConfig", "VolumeOptions.DriverConfig")
            subpath = get_str(vol, "Subpath", field="VolumeOptions.Subpath")
            if source:
                _check_volume_name(source)
            if subpath and (posixpath.isabs(subpath) or ".." in subpath.split("/")):
                raise _mount_error(kind, "subpath must be a relative path within the volume")
            specs.append(
                MountSpec(
                    type="volume", target=target, source=source, read_only=read_only,
                    no_copy=get_bool(vol, "NoCopy", field="VolumeOptions.NoCopy"),
                    volume_labels=get_str_map(vol, "Labels", "VolumeOptions.Labels"),
                    volume_driver=get_str(driver, "Name", "local", "DriverConfig.Name") or "local",
                    volume_options=get_str_map(driver, "Options", "DriverConfig.Options"),
                    subpath=subpath,
                )
            )  # fmt: skip
        else:
            _forbid(kind, item, "BindOptions", "VolumeOptions")
            if source:
                raise _mount_error(kind, "field Source must not be specified")
            options = _tmpfs_options_from_mount(get_object(item, "TmpfsOptions"))
            specs.append(
                MountSpec(type="tmpfs", target=target, read_only=read_only, tmpfs_options=options)
            )
    return specs


def _check_tmpfs_options(target: str, data: str) -> tuple[str, ...]:
    options = tuple(o for o in data.split(",") if o)
    for option in options:
        key, eq, _ = option.partition("=")
        if (eq and key not in _TMPFS_KEYS) or (not eq and option not in _TMPFS_FLAGS):
            raise InvalidCreateRequest(f'invalid tmpfs option ["{option}"] for {target}')
    return options


def parse_tmpfs(tmpfs: Mapping[str, str]) -> list[MountSpec]:
    """``HostConfig.Tmpfs``: ``{"/run": "rw,size=64m"}``."""
    specs: list[MountSpec] = []
    for target, data in tmpfs.items():
        cleaned = _check_target("tmpfs", target)
        options = _check_tmpfs_options(cleaned, data)
        specs.append(
            MountSpec(
                type="tmpfs", target=cleaned, origin="Tmpfs", read_only="ro" in options,
                tmpfs_options=tuple(o for o in options if o not in ("ro", "rw")), raw=data,
            )
        )  # fmt: skip
    return specs
