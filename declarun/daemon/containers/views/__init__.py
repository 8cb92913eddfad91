"""Containers as clients see them: Docker's JSON documents, the list and prune filters, stats.

``documents``  inspect (``ContainerInspectResponse``) and list (``ContainerSummary``) shapes
``listing``    which containers ``docker ps`` shows and ``docker container prune`` removes
``stats``      ``docker stats`` and ``docker top`` from the runtime and cgroups
"""

from __future__ import annotations

__all__: list[str] = []
