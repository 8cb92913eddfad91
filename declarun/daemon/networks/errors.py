"""Errors of the networking layer.

All are raised on purpose and carry a message fit for the API client. Those with a kind
of their own (:mod:`declarun.errdefs`) say so; the others are the host failing (500)::

    DaemonError
    └── NetworkError            base of every networking failure
        ├── NetnsError          a network namespace could not be created, entered or removed
        ├── CniPluginError      a CNI plugin failed; carries the plugin's error code and message
        ├── PoolExhaustedError  no free subnet is left in the address pools (Forbidden, 403)
        └── PortAllocatedError  a host port to publish is already in use (Conflict)
"""

from __future__ import annotations

from declarun.errdefs import Conflict, Forbidden
from declarun.errors import DaemonError

__all__ = [
    "CniPluginError",
    "NetnsError",
    "NetworkError",
    "PoolExhaustedError",
    "PortAllocatedError",
]


class NetworkError(DaemonError):
    """A networking operation failed."""


class NetnsError(NetworkError):
    """A network namespace could not be created, entered or removed."""


class CniPluginError(NetworkError):
    """A CNI plugin failed.

    ``code`` and ``msg`` are the plugin's JSON error fields (code 0 when the plugin printed
    no JSON error), ``details`` its optional details, ``plugin`` the plugin type and
    ``command`` the CNI command (``ADD``, ``DEL``, ``CHECK``).
    """

    def __init__(
        self, plugin: str, command: str, msg: str, code: int = 0, details: str = ""
    ) -> None:
        text = f"CNI plugin {plugin} failed ({command}): {msg}"
        if details:
            text += f": {details}"
        super().__init__(text)
        self.plugin = plugin
        self.command = command
        self.msg = msg
        self.code = code
        self.details = details


class PoolExhaustedError(NetworkError, Forbidden):
    """Every subnet of the address pools overlaps a host route or another network."""


class PortAllocatedError(NetworkError, Conflict):
    """A host port cannot be bound: Docker's ``port is already allocated``."""
