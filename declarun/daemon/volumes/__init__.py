"""Volumes: named directories that outlive containers, and what the daemon does with them.

``store``    the local volume driver: volume directories under ``<data-root>/volumes``,
             described in the metadata database (which also says who uses a volume)
``service``  the volumes behind ``/volumes`` (list filters, prune policy, events) and
             volume mounts of containers (created on first use, anonymous ones removed
             with their container)
"""

from __future__ import annotations

__all__: list[str] = []
