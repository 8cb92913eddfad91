"""What hangs on the container service: attach clients, exec instances, health checks and
restart policies, each registered as listeners on the service.

``container_hooks``  builds them and installs their listeners (before the restore)
``attach_clients``   API clients on a container's (or exec's) stdio: framing, pumping,
                     detach keys, clients waiting for a start
``exec_instances``   ``docker exec`` instances, kept in memory as dockerd keeps them
``health``           running a container's ``Healthcheck`` on an interval
``restart``          restart policies and their back-off
``container_tasks``  one asyncio task per container (health checkers, pending restarts)
"""

from __future__ import annotations

__all__: list[str] = []
