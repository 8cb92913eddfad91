"""``RUN --mount=...`` options parsed into typed values, with BuildKit's rules and defaults.

A spec is CSV of ``key=value`` fields (``type=cache,target=/root/.cache,sharing=locked``);
``ro``/``rw``/``readonly``/``readwrite``/``required`` may stand alone. The type defaults to
``bind``. Defaults filled in here, so an executor need not know them:

* bind: read-only unless ``rw``; ``source`` relative to the build context (or to the stage or
  image named by ``from``), ``""`` meaning its root.
* cache: read-write; ``id`` defaults to the cleaned target; ``sharing`` ``shared``; a fresh
  cache directory is created with ``mode`` (0755), ``uid``/``gid`` (0).
* tmpfs: ``size`` in bytes, 0 for no limit.
* secret: ``id`` is ``source``, else ``id``, else the target's base name; the file appears
  at ``target``, default ``/run/secrets/<id>`` (or only as environment variable ``env``);
  mode 0400, owner 0:0; an absent secret is an error only when ``required``. A secret's
  content must never be written into a layer or the history.
* ssh: ``id`` ``default``; ``target`` default ``/run/buildkit/ssh_agent.N`` (chosen by the
  executor).

Targets may be relative: the evaluator joins them with the working directory.
"""

from __future__ import annotations

import csv
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

from declarun.errdefs import InvalidArgument

__all__ = [
    "BindMount",
    "CacheMount",
    "Mount",
    "MountError",
    "SecretMount",
    "SshMount",
    "TmpfsMount",
    "parse_mount",
]

_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
_SHARING = ("shared", "private", "locked")
_KEYS = (
    "type", "from", "source", "src", "target", "dst", "destination", "readonly", "ro",
    "readwrite", "rw", "required", "size", "id", "sharing", "mode", "uid", "gid", "env",
)  # fmt: skip
_TRUE = {"1", "t", "true", "TRUE", "True", "T"}
_FALSE = {"0", "f", "false", "FALSE", "False", "F"}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)$", re.IGNORECASE)


class MountError(InvalidArgument):
    """A ``--mount`` spec that BuildKit would refuse."""


@dataclass(frozen=True)
class BindMount:
    """A read-only (unless ``readwrite``) view of the context, a stage or an image."""

    target: str
    source: str = ""
    from_: str | None = None
    readwrite: bool = False


@dataclass(frozen=True)
class CacheMount:
    """A persistent cache directory shared between builds, keyed by ``id``."""

    target: str
    id: str
    sharing: str = "shared"
    from_: str | None = None
    source: str = ""
    readonly: bool = False
    mode: int = 0o755
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class TmpfsMount:
    """A tmpfs at ``target``; ``size`` in bytes (0: no limit)."""

    target: str
    size: int = 0


@dataclass(frozen=True)
class SecretMount:
    """A secret file (or environment variable ``env``) that never lands in the image."""

    id: str
    target: str | None
    env: str | None = None
    required: bool = False
    mode: int = 0o400
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class SshMount:
    """An SSH agent socket forwarded from the client."""

    id: str = "default"
    target: str | None = None
    required: bool = False
    mode: int = 0o600
    uid: int = 0
    gid: int = 0


Mount = BindMount | CacheMount | TmpfsMount | SecretMount | SshMount


def _bool(key: str, value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise MountError(f"invalid value for {key}: {value}")


def _uint(key: str, value: str, base: int) -> int:
    try:
        number = int(value, base)
    except ValueError:
        raise MountError(f"invalid value {value} for {key}") from None
    if number < 0 or number > 0xFFFFFFFF:
        raise MountError(f"invalid value {value} for {key}")
    return number


def _ram_bytes(value: str) -> int:
    # go-units RAMInBytes: binary multiples whatever the suffix spelling (k, kb, kib).
    found = _SIZE.match(value.strip())
    if found is None:
        raise MountError(f"invalid value for size: {value}")
    number, unit = float(found.group(1)), found.group(2).lower()
    return int(number * 1024 ** ("kmgtp".index(unit) + 1 if unit else 0))


@dataclass
class _Fields:
    type: str = "bind"
    from_: str | None = None
    source: str = ""
    target: str = ""
    readonly: bool | None = None
    required: bool = False
    size: int = 0
    id: str = ""
    sharing: str = ""
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    env: str | None = None


def _apply(fields: _Fields, key: str, value: str) -> None:
    if key == "type":
        if value.lower() not in _TYPES:
            raise MountError(f'unsupported mount type "{value}"')
        fields.type = value.lower()
    elif key == "from":
        fields.from_ = value
    elif key in ("source", "src"):
        fields.source = value
    elif key in ("target", "dst", "destination"):
        fields.target = value
    elif key in ("readonly", "ro"):
        fields.readonly = _bool(key, value)
    elif key in ("readwrite", "rw"):
        fields.readonly = not _bool(key, value)
    elif key == "required":
        if fields.type not in ("secret", "ssh"):
            raise MountError(f"unexpected key '{key}' for mount type '{fields.type}'")
        fields.required = _bool(key, value)
    elif key == "size":
        if fields.type != "tmpfs":
            raise MountError(f"unexpected key '{key}' for mount type '{fields.type}'")
        fields.size = _ram_bytes(value)
    elif key == "id":
        fields.id = value
    elif key == "sharing":
        if value.lower() not in _SHARING:
            raise MountError(f'unsupported sharing value "{value}"')
        fields.sharing = value.lower()
    elif key == "mode":
        fields.mode = _uint(key, value, 8)
    elif key == "uid":
        fields.uid = _uint(key, value, 10)
    elif key == "gid":
        fields.gid = _uint(key, value, 10)
    elif key == "env":
        fields.env = value
    else:
        raise MountError(f"unexpected key '{key}' in '{key}={value}'")


def _read_fields(spec: str, expand: Callable[[str], str]) -> _Fields:
    try:
        items = next(csv.reader([spec]), [])
    except csv.Error as exc:
        raise MountError(f"failed to parse csv mounts: {exc}") from None
    fields = _Fields()
    for item in items:
        key, has_value, value = item.partition("=")
        key = key.lower()
        if not has_value:
            if key in ("readonly", "ro"):
                fields.readonly = True
            elif key in ("readwrite", "rw"):
                fields.readonly = False
            elif key == "required" and fields.type in ("secret", "ssh"):
                fields.required = True
            elif key == "required":
                raise MountError(f"unexpected key '{key}' for mount type '{fields.type}'")
            else:
                raise MountError(f"invalid field '{item}' must be a key=value pair")
            continue
        if key not in _KEYS:
            raise MountError(f"unexpected key '{key}' in '{item}'")
        _apply(fields, key, expand(value))
    return fields


def _check(fields: _Fields) -> None:
    if fields.type not in ("secret", "ssh", "cache"):
        for name in ("mode", "uid", "gid"):
            if getattr(fields, name) is not None:
                raise MountError(f'{name} not allowed for "{fields.type}" type mounts')
    if fields.type == "secret":
        if fields.from_:
            raise MountError("secret mount should not have a from")
        if fields.sharing:
            raise MountError("secret mount should not define sharing")
        if not fields.source and not fields.target and not fields.id:
            raise MountError("invalid secret mount. one of source, target required")
        if fields.source and fields.id:
            raise MountError("both source and id can't be set")
    if fields.sharing and fields.type != "cache":
        raise MountError(f"invalid cache sharing set for {fields.type} mount")
    if fields.type in ("bind", "cache", "tmpfs"):
        if not fields.target:
            raise MountError(f"invalid mount target for {fields.type} mount: target is required")
        if posixpath.normpath(fields.target) == "/":
            raise MountError(f'invalid mount target "{fields.target}"')


def parse_mount(spec: str, expand: Callable[[str], str] = str) -> Mount:
    """Parse one ``--mount`` value; ``expand`` substitutes variables in each field's value.

    Raises :class:`MountError` with BuildKit's wording for a bad spec.
    """
    fields = _read_fields(spec, expand)
    _check(fields)
    if fields.type == "bind":
        readwrite = fields.readonly is False
        return BindMount(fields.target, fields.source, fields.from_, readwrite)
    if fields.type == "cache":
        return CacheMount(
            target=fields.target,
            id=fields.id or posixpath.normpath(fields.target),
            sharing=fields.sharing or "shared",
            from_=fields.from_,
            source=fields.source,
            readonly=bool(fields.readonly),
            mode=0o755 if fields.mode is None else fields.mode,
            uid=fields.uid or 0,
            gid=fields.gid or 0,
        )
    if fields.type == "tmpfs":
        return TmpfsMount(fields.target, fields.size)
    if fields.type == "secret":
        secret_id = fields.source or fields.id or posixpath.basename(fields.target)
        target: str | None = fields.target or None
        if fields.env is None and target is None:
            target = "/run/secrets/" + posixpath.basename(secret_id)
        return SecretMount(
            id=secret_id,
            target=target,
            env=fields.env,
            required=fields.required,
            mode=0o400 if fields.mode is None else fields.mode,
            uid=fields.uid or 0,
            gid=fields.gid or 0,
        )
    return SshMount(
        id=fields.id or "default",
        target=fields.target or None,
        required=fields.required,
        mode=0o600 if fields.mode is None else fields.mode,
        uid=fields.uid or 0,
        gid=fields.gid or 0,
    )
