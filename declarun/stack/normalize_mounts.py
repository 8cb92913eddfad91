"""Expand a container's ``volumes:`` (short strings or long objects) and ``mounts:`` into ``Mount``.

Short form ``SOURCE:TARGET[:ro|rw]``: a source starting with ``/``, ``./``, ``../`` or ``~`` is a
host path (bind mount, relative to the stack file's directory); a bare name is a named volume;
``TARGET`` alone is an anonymous volume. Long form: ``{type, source, target, read_only, tmpfs}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from declarun.stack.model import Mount
from declarun.stack.normalize_common import FieldPath, Normalizer

__all__ = ["is_host_path", "normalize_mounts"]

_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_MODE = re.compile(r"0?[0-7]{3,4}")
_SHORT_HELP = "expected [SOURCE:]TARGET[:ro|rw], e.g. data:/var/lib/data or ./conf:/etc/app:ro"


def is_host_path(source: str) -> bool:
    """Whether a short-form mount source names a host path (bind) rather than a volume."""
    return source.startswith(("/", "./", "../", "~")) or source in (".", "..")


def _short(ctx: Normalizer, text: str, path: FieldPath) -> Mount | None:
    parts = text.split(":")
    if len(parts) > 3 or any(not p for p in parts):
        ctx.problem(path, f"{text!r}: {_SHORT_HELP}")
        return None
    read_only = False
    if len(parts) == 3:
        for option in parts[2].split(","):
            if option not in ("ro", "rw"):
                ctx.problem(path, f"mount option {option!r} is not supported; use ro or rw")
                return None
            read_only = option == "ro"
    if len(parts) == 1:
        source, target = None, parts[0]
    else:
        source, target = parts[0], parts[1]
    if not target.startswith("/"):
        ctx.problem(path, f"mount target {target!r} must be an absolute path")
        return None
    location = ctx.locate(path)
    if source is None:
        return Mount(type="volume", target=target, read_only=read_only, location=location)
    if is_host_path(source):
        host = str(ctx.resolve_path(source))
        return Mount(
            type="bind", source=host, target=target, read_only=read_only, location=location
        )
    if not _NAME.fullmatch(source):
        ctx.problem(
            path,
            f"{source!r} is neither a volume name nor a host path",
            hint="a host path must start with /, ./, ../ or ~",
        )
        return None
    return Mount(
        type="volume", source=source, target=target, read_only=read_only, location=location
    )


def _long(ctx: Normalizer, entry: Mapping[str, Any], path: FieldPath) -> Mount | None:
    kind = entry.get("type", "volume")
    source = entry.get("source")
    target = str(entry.get("target", ""))
    tmpfs = entry.get("tmpfs")
    ok = True
    if not target.startswith("/"):
        ctx.problem((*path, "target"), f"mount target {target!r} must be an absolute path")
        ok = False
    if kind == "bind" and not source:
        ctx.problem(path, "a bind mount needs a source (a host path)")
        ok = False
    if kind == "tmpfs" and source is not None:
        ctx.problem((*path, "source"), "a tmpfs mount has no source")
        ok = False
    if kind != "tmpfs" and tmpfs is not None:
        ctx.problem((*path, "tmpfs"), f"tmpfs options apply to type tmpfs only, not {kind}")
        ok = False
    if kind == "volume" and source is not None and not _NAME.fullmatch(str(source)):
        ctx.problem((*path, "source"), f"{source!r} is not a valid volume name")
        ok = False
    size = mode = None
    if isinstance(tmpfs, Mapping):
        size = ctx.size(tmpfs.get("size"), (*path, "tmpfs", "size"))
        mode_text = tmpfs.get("mode")
        if mode_text is not None:
            if _MODE.fullmatch(str(mode_text)):
                mode = int(str(mode_text), 8)
            else:
                ctx.problem(
                    (*path, "tmpfs", "mode"), f"mode {mode_text!r} is not octal like '1777'"
                )
                ok = False
    if not ok:
        return None
    if kind == "bind":
        source = str(ctx.resolve_path(str(source)))
    return Mount(
        type=kind,
        source=None if source is None else str(source),
        target=target,
        read_only=bool(entry.get("read_only", False)),
        tmpfs_size=size,
        tmpfs_mode=mode,
        location=ctx.locate(path),
    )


def normalize_mounts(
    ctx: Normalizer, volumes: Any, mounts: Any, path: FieldPath
) -> tuple[Mount, ...]:
    """All mounts of a container: ``volumes:`` entries first, then ``mounts:`` entries.

    ``path`` is the container's path. Two mounts on one target are a problem, as in Docker.
    """
    result: list[Mount] = []
    for key, value in (("volumes", volumes), ("mounts", mounts)):
        if not isinstance(value, list):
            continue
        for index, entry in enumerate(value):
            item_path = (*path, key, index)
            if isinstance(entry, Mapping):
                mount = _long(ctx, entry, item_path)
            else:
                mount = _short(ctx, str(entry), item_path)
            if mount is None:
                continue
            if any(m.target == mount.target for m in result):
                ctx.problem(item_path, f"two mounts on the same target {mount.target!r}")
                continue
            result.append(mount)
    return tuple(result)
