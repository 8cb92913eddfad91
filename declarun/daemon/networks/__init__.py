"""declarund networking: network namespaces, CNI plugins, name resolution, published ports.

Modules, each with one purpose:

``netns``      persistent named network namespaces (bind mounts under the run dir)
``cni``        network configuration lists and a small CNI plugin driver with a result cache
``ipam_pool``  automatic subnet allocation that avoids the host's routes and other networks
``dnswire``    the DNS message subset the embedded server needs
``dns``        the embedded DNS server (127.0.0.11 in each container) and resolv.conf
``ports``      published ports: host-port reservation and the userland proxy
``errors``     the errors of this package

The daemon's side (see ``specs/networking.md``):

``store``      network records and per-container live state (in the metadata database)
``service``    the built-in and user networks behind ``/networks``
``wiring``     containers on networks: setup, teardown, connect, crash recovery
``configured`` which networks a container is configured for (NetworkMode, EndpointsConfig)
``portspec``   PortBindings / PublishAllPorts to the ports to bind
``views``      the Network and NetworkSettings JSON shapes
``hostfw``     the route_localnet guard rule and the FORWARD policy
``listing``    which networks a list shows and a prune removes (dockerd's filters)
"""

from __future__ import annotations

__all__: list[str] = []
