"""Side by side: the same docker-py calls against declarund and dockerd, and what to compare.

``pair`` (see ``tests/conformance/conftest.py``) gives both engines' docker-py low-level
clients, pinned to API 1.41 -- the newest dockerd 20.10 speaks -- so the two answer the same
version of the API. :func:`outcome` runs a call and keeps what a client sees of it: the
value, or the status and message of the error. :func:`shape_differences` compares two
JSON documents the way a client written for dockerd reads them: every key dockerd sends must
be there with a value of the same JSON type (``null`` is a type of its own: a client that
iterates a list or reads a map fails on ``null``; only an *empty* list or map where dockerd
writes ``null`` is the same), recursively; keys only declarund sends (fields of later API
versions, such as ``DNSNames``) are not differences.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

__all__ = [
    "API_VERSION",
    "Outcome",
    "json_type",
    "outcome",
    "shape_differences",
    "tar_with",
]

#: The API version both engines are driven at (dockerd 20.10's newest).
API_VERSION = "1.41"


@dataclass(frozen=True)
class Outcome:
    """What a client saw of one call: ``status`` 0 and the ``value`` when it succeeded,
    else the HTTP status and the daemon's message."""

    status: int
    value: Any = None
    message: str = ""

    @property
    def ok(self) -> bool:
        """The call succeeded."""
        return self.status == 0


def outcome(call: Callable[[], Any]) -> Outcome:
    """Run ``call``; an API error becomes its status and explanation."""
    try:
        return Outcome(0, call())
    except docker.errors.APIError as exc:
        return Outcome(int(exc.status_code or 0), None, str(exc.explanation or ""))


def json_type(value: Any) -> str:
    """The JSON type of ``value``: object, array, string, number, boolean or null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def shape_differences(
    dockerd: Any,
    declarund: Any,
    *,
    ignore: Iterable[str] = (),
    keyed: Iterable[str] = (),
    path: str = "",
) -> list[str]:
    """Where ``declarund`` does not have ``dockerd``'s shape (see the module docstring).

    ``ignore`` holds paths (``NetworkSettings.SandboxKey``; ``*`` matches any key, ``[]``
    the items of an array) whose values may differ in type; they and everything below them
    are skipped. Maps keyed by data (container IDs, port keys) are compared by their first
    entry's shape: ``keyed`` names them (same path syntax).
    """
    ignored = set(ignore)
    by_data = set(keyed)
    if _ignored(path, ignored):
        return []
    kind, other = json_type(dockerd), json_type(declarund)
    if kind == "null" and other in ("array", "object") and not declarund:
        return []  # an empty list or map where dockerd writes a nil one: clients read both
    if kind != other:
        return [f"{path or '.'}: dockerd {kind}, declarund {other}"]
    out: list[str] = []
    if kind == "object" and path and _ignored(path, by_data):
        if dockerd and declarund:
            first, other = next(iter(dockerd.values())), next(iter(declarund.values()))
            out += shape_differences(first, other, ignore=ignored, keyed=by_data,
                                     path=f"{path}.*")  # fmt: skip
        elif dockerd:
            out.append(f"{path}: empty (dockerd has entries)")
    elif kind == "object":
        for key, value in dockerd.items():
            child = f"{path}.{key}" if path else key
            if key not in declarund:
                if not _ignored(child, ignored):
                    out.append(f"{child}: missing (dockerd has a {json_type(value)})")
                continue
            out += shape_differences(value, declarund[key], ignore=ignored, keyed=by_data,
                                     path=child)  # fmt: skip
    elif kind == "array" and dockerd and declarund:
        out += shape_differences(dockerd[0], declarund[0], ignore=ignored, keyed=by_data,
                                 path=f"{path}[]")  # fmt: skip
    return out


def _ignored(path: str, ignored: set[str]) -> bool:
    if not path:
        return False
    parts = path.split(".")
    for pattern in ignored:
        wanted = pattern.split(".")
        if len(wanted) <= len(parts) and all(
            w in ("*", p) for w, p in zip(wanted, parts[: len(wanted)], strict=False)
        ):
            return True
    return False


def tar_with(files: dict[str, bytes]) -> bytes:
    """A tar holding ``files`` (name -> content), regular files mode 0644."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
