"""Running a container from a create request with the real runc, for the bundle tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from declarun.daemon.containers.config.imageconfig import ImageConfig, merge_image_config
from declarun.daemon.containers.config.request import parse_create_request
from declarun.daemon.containers.runtime.bundle import BundleInputs, build_spec, write_bundle
from declarun.daemon.containers.runtime.users import resolve_user
from tests.support.rootfs import make_busybox_rootfs

__all__ = ["RUNC", "Ran", "needs_runc", "run_container"]

RUNC = shutil.which("runc") or "/usr/sbin/runc"
needs_runc = pytest.mark.skipif(
    not os.path.exists(RUNC) or os.geteuid() != 0, reason="needs runc and root"
)
BUSYBOX_IMAGE = ImageConfig(env=("PATH=/bin",), cmd=("sh",))


@dataclass(frozen=True)
class Ran:
    """Outcome of one ``runc run``: exit code, output, and the spec that was run."""

    code: int
    stdout: str
    stderr: str
    spec: dict[str, Any]


def run_container(
    work: Path,
    body: Mapping[str, Any],
    *,
    volume_paths: Mapping[str, Path] | None = None,
    etc_files: Mapping[str, Path] | None = None,
    rootfs: Path | None = None,
) -> Ran:
    """Parse ``body``, merge with a busybox image, build a bundle, ``runc run`` it, clean up."""
    container_id = f"declarun-test-{uuid.uuid4().hex[:12]}"
    rootfs = rootfs or make_busybox_rootfs(work / "rootfs")
    request = parse_create_request({"Image": "busybox", **body})
    config = merge_image_config(request.config, BUSYBOX_IMAGE)
    user = resolve_user(rootfs, config.user, request.host_config.group_add)
    spec = build_spec(
        BundleInputs(
            container_id=container_id,
            rootfs=rootfs,
            config=config,
            host_config=request.host_config,
            user=user,
            hostname=config.hostname or container_id[:12],
            volume_paths=volume_paths or {},
            etc_files=etc_files or {},
        )
    )
    bundle = work / "bundle"
    write_bundle(bundle, spec)
    try:
        proc = subprocess.run(
            [RUNC, "run", "--bundle", str(bundle), container_id],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        subprocess.run([RUNC, "delete", "--force", container_id], capture_output=True, check=False)
    return Ran(proc.returncode, proc.stdout, proc.stderr, spec)
