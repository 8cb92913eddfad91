"""A build context as the docker CLI sends it: a tar of the directory, ``.dockerignore`` applied.

The entries are the ones :func:`declarun.dockerfile.walk_context` lists — the
``.dockerignore`` rules as the CLI's archiver applies them, the Dockerfile and the
``.dockerignore`` always included — in the same lexical walk order, with the CLI's header
choices (``moby/go-archive``): owner ``0:0`` without user or group names, permission bits
kept, times truncated to the second (no access or change time), a second path to one inode
sent as a hard link, sockets left out.

A Dockerfile outside the context is sent as the CLI sends it: inside the tar under the name
``.dockerfile.<20 hex>`` (here the start of its sha256, so the same file gets the same
name), with that name appended to the ``.dockerignore`` sent, so the builder reads it but
no ``COPY`` sees it.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path
from typing import IO

from declarun.dockerfile import context_matcher, walk_context
from declarun.errdefs import InvalidArgument

__all__ = ["write_context_tar"]


def _relative_dockerfile(context: Path, dockerfile: str) -> str | None:
    path = Path(os.path.normpath(context / dockerfile))
    try:
        return path.relative_to(context).as_posix()
    except ValueError:
        return None


def _add(tar: tarfile.TarFile, full_path: str, name: str) -> None:
    try:
        # None for a socket, which typeshed does not say
        info: tarfile.TarInfo | None = tar.gettarinfo(name=full_path, arcname=name)
    except OSError as exc:
        raise InvalidArgument(f"cannot read {full_path}: {exc.strerror or exc}") from None
    if info is None:  # a socket: the CLI leaves them out too
        return
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = int(info.mtime)
    if info.isreg():
        try:
            with open(full_path, "rb") as handle:
                tar.addfile(info, handle)
        except OSError as exc:
            raise InvalidArgument(
                f"cannot send {full_path}: {exc.strerror or exc} (did it change meanwhile?)"
            ) from None
    else:
        tar.addfile(info)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, mtime
    tar.addfile(info, io.BytesIO(data))


def write_context_tar(context: Path, dockerfile: str, out: IO[bytes]) -> str:
    """Write the context ``context`` to ``out`` as an uncompressed tar; returns the
    Dockerfile's name inside it (what ``POST /build?dockerfile=`` takes).

    ``dockerfile`` is relative to ``context`` and may lie outside it. Raises
    ``InvalidArgument`` for a context or Dockerfile that cannot be read, and for a bad
    ``.dockerignore`` pattern.
    """
    context = Path(os.path.abspath(context))
    inside = _relative_dockerfile(context, dockerfile)
    matcher = context_matcher(context, inside)
    outside: tuple[str, bytes, int] | None = None
    if inside is None:
        path = Path(os.path.normpath(context / dockerfile))
        try:
            data = path.read_bytes()
            mtime = int(path.stat().st_mtime)
        except OSError as exc:
            raise InvalidArgument(f"cannot read {path}: {exc.strerror or exc}") from None
        outside = (f".dockerfile.{hashlib.sha256(data).hexdigest()[:20]}", data, mtime)
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        ignore_sent = False
        for entry in walk_context(context, matcher):
            if (
                outside is not None
                and entry.path == ".dockerignore"
                and stat.S_ISREG(entry.stat.st_mode)
            ):
                text = Path(entry.full_path).read_bytes().rstrip(b"\n")
                _add_bytes(
                    tar,
                    ".dockerignore",
                    text + b"\n" + outside[0].encode() + b"\n",
                    stat.S_IMODE(entry.stat.st_mode),
                    int(entry.stat.st_mtime),
                )
                ignore_sent = True
                continue
            _add(tar, entry.full_path, entry.path)
        if outside is not None:
            name, data, mtime = outside
            _add_bytes(tar, name, data, 0o644, mtime)
            if not ignore_sent:
                _add_bytes(tar, ".dockerignore", f"{name}\n".encode(), 0o600, mtime)
            return name
    return inside or dockerfile
