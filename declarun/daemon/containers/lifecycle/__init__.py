"""The container service and the life of a container: created, started, exited, stopped,
removed, found again after a daemon restart.

``service``        :class:`ContainerService`, the operations other areas call, and their locking
``locks``          one lock per container, shared by the service and its helpers
``record``         a container as the daemon keeps it (configuration, state, paths)
``store``          the records in memory and in the metadata database; lookups by reference
``names``          container ids and generated names
``new_record``     a create request up to a record (validate, find the image, merge, name)
``image_source``   the image service as container creation sees it
``launch``         a record to a created runtime container (root, /etc files, bundle, conmon)
``etcfiles``       the ``hosts``, ``resolv.conf`` and ``hostname`` the daemon manages
``networking``     the seam to networking (the protocol the networks area implements)
``listeners``      the callbacks other parts hang on the service
``exit_recorder``  following each run to its end and recording that end
``stopping``       stop, kill, pause, unpause
``removal``        rm, ``wait?condition=removed``, prune
``restore``        finding every container again at daemon start: what conmon's files
                   and the runtime say of each, reconciled with its record
``commit``         ``docker commit``: a container's changes as a new image
"""

from __future__ import annotations

__all__: list[str] = []
