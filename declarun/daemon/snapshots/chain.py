"""Chain IDs: the identity of a stack of layers, as the OCI image spec defines it.

``chainID(L0) = diffID(L0)`` and ``chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln))``,
written ``sha256:<hex>``. Two images that share their first layers share those snapshots.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

__all__ = ["DIGEST_RE", "chain_id", "chain_ids", "check_digest"]

DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


def check_digest(value: str, what: str = "digest") -> str:
    """Return ``value`` if it is ``sha256:`` and 64 lowercase hex digits, else ValueError.

    Chain IDs become directory names, so nothing else may get through.
    """
    if not DIGEST_RE.fullmatch(value):
        raise ValueError(f"invalid {what} {value!r}: expected sha256:<64 hex digits>")
    return value


def chain_id(parent: str | None, diff_id: str) -> str:
    """The chain ID of layer ``diff_id`` applied on top of the chain ``parent``."""
    check_digest(diff_id, "diff ID")
    if parent is None:
        return diff_id
    check_digest(parent, "chain ID")
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode("ascii")).hexdigest()


def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    """Chain IDs for an image's ``rootfs.diff_ids``, bottom layer first."""
    out: list[str] = []
    parent: str | None = None
    for diff_id in diff_ids:
        parent = chain_id(parent, diff_id)
        out.append(parent)
    return out
