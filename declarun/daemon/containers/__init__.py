"""Containers in declarund, by role (each sub-package's docstring lists its modules):

``config/``     what a container is asked to be: the create request as values, the image merge
``runtime/``    running it: the OCI runtime, the bundle, conmon, exit files, exec sessions, logs
``rootfs/``     its root file system: the writable layer's mounts, files read inside the root,
                ``cp``/``export``/``diff``
``lifecycle/``  the container service: records, create, start, exits, stop, remove, restore,
                commit
``hooks/``      what hangs on the service: attach clients, exec instances, health checks,
                restart policies
``views/``      what clients see: inspect and list documents, list/prune filters, stats

Dependencies point one way: ``config`` and ``rootfs`` use nothing of this package;
``runtime`` builds on them; ``lifecycle`` on all three; ``hooks`` and ``views`` on the
service (``.importlinter`` holds this package to having no import cycle).
"""

from __future__ import annotations

__all__: list[str] = []
