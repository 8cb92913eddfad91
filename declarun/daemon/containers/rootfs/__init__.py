"""A container's root file system: its writable layer, mounted on demand, and its files read
and written without ever leaving it.

``mounts``    the writable layer from the snapshotter, mounted and released by reference count
``inroot``    reading one file inside a root (the image's ``/etc/passwd``), links re-rooted
``fsaccess``  ``docker cp`` (stat, archive, extract), ``export`` and the layer tar of
              ``commit``, through directory descriptors
``changes``   what a container changed against its image (``diff``, and what ``commit``
              takes), its own mount points left out
"""

from __future__ import annotations

__all__: list[str] = []
