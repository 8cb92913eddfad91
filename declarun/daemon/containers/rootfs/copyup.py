"""Filling a new volume from the image: what is at the volume's mount point in the
container's root is copied into the volume when the volume is empty (dockerd's copy-up).

A named volume mounted at ``/etc`` of busybox then holds busybox's ``/etc``, as it does on
dockerd; ``nocopy`` (``VolumeOptions.NoCopy``, or the ``nocopy`` bind mode) turns it off.
The mount point is resolved inside the root without ever following a link out of it
(:func:`~declarun.daemon.containers.rootfs.inroot.open_dir_in_root`); the copy is
``cp -a`` of that directory's descriptor, which keeps owners, modes, times, links and
device nodes and follows no symbolic link. The volume directory also takes the owner and
mode of the directory it covers, as dockerd's ``copyOwnership`` gives it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from declarun.daemon.containers.rootfs.inroot import open_dir_in_root
from declarun.errdefs import SystemFailure

__all__ = ["copy_image_content"]


def _empty(directory: Path) -> bool:
    with os.scandir(directory) as entries:
        return next(entries, None) is None


def copy_image_content(rootfs: Path, target: str, volume: Path) -> bool:
    """Copy ``target`` of ``rootfs`` into the empty directory ``volume``; False when there
    was nothing to do (the volume holds something, or the root has no directory there)."""
    if not _empty(volume):
        return False
    try:
        fd = open_dir_in_root(rootfs, target)
    except OSError:  # missing, a file, a loop: the mount point is made by the runtime
        return False
    try:
        info = os.fstat(fd)
        if not _empty(Path(f"/proc/self/fd/{fd}")):
            done = subprocess.run(
                ["cp", "-a", "--", f"/proc/self/fd/{fd}/.", f"{volume}/"],
                pass_fds=(fd,), capture_output=True, text=True, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                raise SystemFailure(
                    f"copying the image's {target} into its volume failed: {done.stderr.strip()}"
                )
        os.chown(volume, info.st_uid, info.st_gid)
        os.chmod(volume, info.st_mode & 0o7777)
    finally:
        os.close(fd)
    return True
