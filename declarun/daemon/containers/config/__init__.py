"""What a container is asked to be: a ``POST /containers/create`` request as frozen, validated
values, merged with its image's config.

``request``         the whole create request (``ContainerConfig``, ``Healthcheck``, names)
``hostconfig``      ``HostConfig``: resources, restart policy, capabilities, sysctls, ...
``mountspec``       ``Binds``, ``Mounts`` and ``Tmpfs`` as one typed list of mounts
``network_fields``  the network-facing fields: port keys and bindings, DNS, extra hosts
``imageconfig``     merging the image's config into the request (Cmd, Env, User, ...)
``caps``            capability names and Docker's add/drop arithmetic
``defaults``        Docker's defaults as constant tables (capabilities, devices, paths)
``fields``          typed readers of JSON fields with dockerd's error wording
``errors``          the errors of a bad request (invalid arguments)

Pure values and functions: nothing here touches the disk or the runtime.
"""

from __future__ import annotations

__all__: list[str] = []
