"""A busybox root filesystem as a plain directory, for running containers with runc directly.

``make_busybox_rootfs(dir)`` copies Debian's static ``/bin/busybox`` into ``dir/bin`` with
applet symlinks, and writes ``/etc/passwd`` and ``/etc/group`` with ``root``, ``nobody`` and
``app`` (uid 1000, primary group ``app`` 1000, also a member of ``staff`` 50 and ``audio`` 63).
"""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["APP_GID", "APP_UID", "BUSYBOX", "make_busybox_rootfs"]

BUSYBOX = Path("/bin/busybox")
APP_UID = 1000
APP_GID = 1000
_APPLETS = (
    "sh", "echo", "id", "cat", "ls", "sleep", "hostname", "ps", "grep", "touch", "mkdir",
    "true", "false", "seq", "wc", "head", "stat", "env", "pwd", "test", "mount", "rm",
    "unshare",
)  # fmt: skip
PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    f"app:x:{APP_UID}:{APP_GID}:app user:/home/app:/bin/sh\n"
)
GROUP = f"root:x:0:\nstaff:x:50:app\naudio:x:63:root,app\nnogroup:x:65534:\napp:x:{APP_GID}:\n"


def make_busybox_rootfs(root: Path) -> Path:
    """Fill ``root`` (created if needed) with a minimal busybox system; returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for name, mode in (("bin", 0o755), ("etc", 0o755), ("proc", 0o555), ("sys", 0o555),
                       ("dev", 0o755), ("tmp", 0o1777), ("root", 0o700), ("home", 0o755)):  # fmt: skip
        (root / name).mkdir(exist_ok=True)
        (root / name).chmod(mode)
    home = root / "home" / "app"
    home.mkdir(exist_ok=True)
    shutil.chown(home, APP_UID, APP_GID)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in _APPLETS:
        link = root / "bin" / applet
        if not link.is_symlink():
            link.symlink_to("busybox")
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    return root
