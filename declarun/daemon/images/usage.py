"""What images take on disk, as ``GET /system/df`` reports it (dockerd 20.10's rules).

``LayersSize`` is the bytes of every unpacked layer, each counted once. The images listed
are those ``docker images`` lists (a build's intermediate images are not), each with
``Containers`` (how many containers were created from it) and ``SharedSize`` (the bytes of
its layers that another listed image has too). Blocking: call it from a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from declarun.daemon.filters import Filters
from declarun.daemon.images.listing import image_summaries
from declarun.daemon.images.service import ImageService

__all__ = ["image_disk_usage"]


def image_disk_usage(
    service: ImageService, containers_by_image: Mapping[str, int]
) -> tuple[int, list[dict[str, Any]]]:
    """``LayersSize`` and the ``Images`` of ``/system/df``."""
    layer_sizes = {layer.chain_id: layer.size for layer in service.metadata.list_layers()}
    summaries = image_summaries(service, Filters())
    chains: dict[str, list[str]] = {}
    refs: dict[str, int] = {}
    for summary in summaries:
        image = service.metadata.get_image(summary["Id"])
        chain = [layer.chain_id for layer in image.record.layers]
        chains[image.id] = chain
        for chain_id in chain:
            refs[chain_id] = refs.get(chain_id, 0) + 1
    for summary in summaries:
        chain = chains[summary["Id"]]
        summary["SharedSize"] = sum(layer_sizes.get(c, 0) for c in chain if refs[c] > 1)
        summary["Containers"] = containers_by_image.get(summary["Id"], 0)
    return sum(layer_sizes.values()), summaries
