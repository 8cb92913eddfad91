"""Containers in declarund: configuration (create requests, image merge, users), OCI bundles,
and (elsewhere in this package) the runtime and its supervision.
"""

from __future__ import annotations

__all__: list[str] = []
