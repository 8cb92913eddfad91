"""A service's ``volumes``, ``tmpfs``, ``secrets`` and ``configs`` as a container's mounts.

``volumes`` keep their short or long form (host paths already absolute); modes other than
``ro``/``rw`` are warned about (``cached``, ``delegated`` and ``consistent`` do nothing on
Linux and are dropped quietly). ``tmpfs`` entries become tmpfs mounts with their ``size`` and
``mode``. A file secret is a read-only bind mount of the file at ``/run/secrets/<name>``, a
file config at ``/<name>``: what docker compose does without Swarm.
"""

from __future__ import annotations

from typing import Any

from declarun.compose.nodes import Node
from declarun.compose.translation import Translation
from declarun.stack.load import DataPath
from declarun.stack.normalize_common import scalar_text
from declarun.stack.schema import suggest

__all__ = ["translate_mounts"]

_NO_EFFECT_MODES = frozenset({"cached", "delegated", "consistent"})
_PROPAGATION = frozenset({"shared", "rshared", "slave", "rslave", "private", "rprivate"})
_MODE_WARNINGS = {
    "z": "SELinux relabelling (:z) is not supported, ignored",
    "Z": "SELinux relabelling (:Z) is not supported, ignored",
    "nocopy": "nocopy is not supported, ignored: a new volume is filled from the image",
}


def _octal(value: Any) -> str:
    """A permission mode as octal text: an integer is the bits (``0o1777``), text is octal."""
    if isinstance(value, int) and not isinstance(value, bool):
        return format(value, "o")
    return scalar_text(value).removeprefix("0o")


def _short_volume(t: Translation, node: Node, cpath: DataPath) -> str | None:
    text = scalar_text(node.value)
    parts = text.split(":")
    if len(parts) == 1:
        return text
    if len(parts) > 3:
        t.problem(node.where, cpath, f"{text!r}: expected [SOURCE:]TARGET[:MODE]")
        return None
    read_only = False
    for mode in parts[2].split(",") if len(parts) == 3 else []:
        if mode in ("ro", "rw"):
            read_only = mode == "ro"
        elif mode in _NO_EFFECT_MODES:
            continue
        elif mode in _MODE_WARNINGS:
            t.warn(node.where, cpath, _MODE_WARNINGS[mode])
        elif mode in _PROPAGATION:
            t.warn(node.where, cpath, f"mount propagation ({mode}) is not supported, ignored")
        else:
            t.problem(node.where, cpath, f"unknown volume mode {mode!r} in {text!r}")
            return None
    return f"{parts[0]}:{parts[1]}" + (":ro" if read_only else "")


def _long_volume(t: Translation, node: Node, cpath: DataPath) -> dict[str, Any] | None:
    kind_node = node.get("type")
    kind = scalar_text(kind_node.value) if kind_node is not None else "volume"
    if kind not in ("volume", "bind", "tmpfs"):
        t.warn(node.where, cpath, f"a {kind} mount is not supported, ignored")
        return None
    entry: dict[str, Any] = {"type": kind}
    for key in ("source", "target"):
        found = node.get(key)
        if found is not None and found.value not in (None, ""):
            entry[key] = scalar_text(found.value)
    read_only = node.get("read_only")
    if read_only is not None and read_only.value in (True, "true"):
        entry["read_only"] = True
    bind = node.get("bind")
    create = bind.get("create_host_path") if bind is not None else None
    if create is not None and create.value in (True, "true"):
        t.warn(
            create.at,
            (*cpath, "bind", "create_host_path"),
            "declarun never creates a missing host path: the source must exist",
        )
    tmpfs = node.get("tmpfs")
    if kind == "tmpfs" and tmpfs is not None and tmpfs.is_map:
        options: dict[str, Any] = {}
        size = tmpfs.get("size")
        if size is not None:
            options["size"] = size.value
        mode = tmpfs.get("mode")
        if mode is not None:
            options["mode"] = _octal(mode.value)
        if options:
            entry["tmpfs"] = options
    return entry


def _tmpfs(t: Translation, node: Node, cpath: DataPath) -> dict[str, Any]:
    target, _sep, text = scalar_text(node.value).partition(":")
    options: dict[str, Any] = {}
    for option in text.split(",") if text else []:
        key, _eq, value = option.partition("=")
        if key == "size":
            options["size"] = value
        elif key == "mode":
            options["mode"] = value
        else:
            t.warn(node.where, cpath, f"tmpfs option {option!r} is not supported, ignored")
    entry: dict[str, Any] = {"type": "tmpfs", "target": target}
    if options:
        entry["tmpfs"] = options
    return entry


def _file_mounts(
    t: Translation,
    service: Node,
    cpath: DataPath,
    kind: str,
    definitions: Node | None,
) -> list[tuple[dict[str, Any], Node, DataPath, str]]:
    """The bind mounts of a service's ``secrets`` or ``configs``, with their names."""
    mounts: list[tuple[dict[str, Any], Node, DataPath, str]] = []
    field = service.get(kind)
    for index, item in enumerate(field.elements() if field is not None else []):
        item_cpath = (*cpath, kind, index)
        if item.is_map:
            source_node = item.get("source")
            target_node = item.get("target")
        else:
            source_node, target_node = item, None
        name = "" if source_node is None else scalar_text(source_node.value)
        definition = definitions.get(name) if definitions is not None else None
        if definition is None:
            choices = [n for n, _ in definitions.items()] if definitions is not None else []
            t.problem(
                item.where,
                item_cpath,
                f"undefined {kind[:-1]} {name!r}",
                suggest(name, choices) or f"declare it under the top-level {kind}:",
            )
            continue
        file = definition.get("file")
        if file is None:
            t.warn(
                item.where,
                item_cpath,
                f"{kind[:-1]} {name!r} is not from a file: not supported, not mounted",
            )
            continue
        target = name if target_node is None else scalar_text(target_node.value)
        if not target.startswith("/"):
            target = f"/run/secrets/{target}" if kind == "secrets" else f"/{target}"
        mount = {
            "type": "bind",
            "source": scalar_text(file.value),
            "target": target,
            "read_only": True,
        }
        mounts.append((mount, item, item_cpath, name))
    return mounts


def translate_mounts(
    t: Translation,
    root: Node,
    service: Node,
    spath: DataPath,
    cpath: DataPath,
    container: dict[str, Any],
) -> None:
    """Fill ``container``'s ``volumes`` and ``mounts`` from the service's fields."""
    model_paths: list[DataPath] = []
    volumes: list[Any] = []
    volumes_node = service.get("volumes")
    for index, item in enumerate(volumes_node.elements() if volumes_node is not None else []):
        item_cpath = (*cpath, "volumes", index)
        entry = (
            _long_volume(t, item, item_cpath) if item.is_map else _short_volume(t, item, item_cpath)
        )
        if entry is None:
            continue
        t.record((*spath, "volumes", len(volumes)), item, item_cpath)
        volumes.append(entry)
        model_paths.append(item_cpath)
    mounts: list[tuple[dict[str, Any], Node, DataPath]] = []
    tmpfs_node = service.get("tmpfs")
    for index, item in enumerate(tmpfs_node.elements() if tmpfs_node is not None else []):
        item_cpath = (*cpath, "tmpfs", index)
        mounts.append((_tmpfs(t, item, item_cpath), item, item_cpath))
    for kind in ("secrets", "configs"):
        for mount, item, item_cpath, name in _file_mounts(t, service, cpath, kind, root.get(kind)):
            mounts.append((mount, item, item_cpath))
            t.note(
                (*spath, "mounts", len(mounts) - 1),
                f"the {kind[:-1]} {name!r}: a read-only bind mount of its file, as docker "
                "compose makes it",
            )
    if volumes:
        if volumes_node is not None:
            t.record((*spath, "volumes"), volumes_node, (*cpath, "volumes"))
        container["volumes"] = volumes
    for index, (_mount, item, item_cpath) in enumerate(mounts):
        t.record((*spath, "mounts", index), item, item_cpath)
        model_paths.append(item_cpath)
    if mounts:
        container["mounts"] = [mount for mount, _, _ in mounts]
    for index, path in enumerate(model_paths):
        t.alias(f"containers.{spath[1]}.mounts[{index}]", path)
