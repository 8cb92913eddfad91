"""A 300 MB pull interrupted by a daemon killed in the middle (a fail point) resumes after
the restart from the bytes already written, with ``Range``, instead of starting over; the
data root is consistent before and after (``declarun daemon check``)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from declarun.daemon import failpoints
from tests.daemon.images.daemon_support import ThreadLoop, docker, need_docker
from tests.support.daemon import daemon_check, running_daemon
from tests.support.faultproxy import FaultProxy, running_proxy
from tests.support.images import build_busybox_layout, skopeo_push
from tests.support.registry import RunningRegistry

SIZE = 300 << 20
CHUNK = 1 << 20  # the daemon passes the pull-download point once per chunk written


def test_interrupted_300mb_pull_resumes_after_restart(
    tmp_path: Path, registry: RunningRegistry
) -> None:
    need_docker()
    image = build_busybox_layout(
        tmp_path / "layout", tag="big", extra_layers=1, extra_layer_size=SIZE
    )
    skopeo_push(image.layout, registry, "big/busybox:big", tag="big")
    big = max(image.layers, key=lambda layer: layer.size)
    assert big.size >= SIZE
    loop = ThreadLoop()
    served = running_proxy(registry.url)
    try:
        proxy: FaultProxy = loop.run(served.__aenter__())
        ref = f"{proxy.host}/big/busybox:big"
        # Killed after some 40 to 180 MB (the point is passed once per chunk received,
        # of at most 1 MiB).
        crash_at = (big.size * 6 // 10) // CHUNK
        env = {failpoints.ENV: f"pull-download=crash@{crash_at}"}
        with running_daemon(tmp_path / "d", env=env) as daemon:
            docker(daemon, "pull", ref, check=False, timeout=300)
            assert daemon.wait_exit(60) == -signal.SIGKILL, daemon.log()[-2000:]
            ingest = daemon.data_root / "content" / "ingest"
            written = max(p.stat().st_size for p in ingest.glob("*/data"))
            assert written >= 16 << 20, written
            offline = daemon_check(daemon)
            assert offline.returncode in (0, 1), offline.stderr
            assert "interrupted pull is kept to resume" in offline.stderr, offline.stderr
            daemon.restart(extra_env={})
            checked = daemon_check(daemon)
            assert checked.returncode == 0 and checked.stdout == "", checked.stdout
            proxy.log.clear()
            pulled = docker(daemon, "pull", ref, timeout=300)
            assert "Downloaded newer image" in pulled.stdout
            fetches = [line for line in proxy.log if f"/blobs/{big.digest}" in line]
            assert fetches, proxy.log
            # The big layer was asked for from where the killed daemon stopped: never from
            # byte 0 (the ingest's bytes were kept and verified by hashing them again).
            assert all(line.count("bytes=") == 1 for line in fetches), fetches
            starts = [int(line.rsplit("bytes=", 1)[1].rstrip("-")) for line in fetches]
            assert min(starts) == written, (starts, written, big.size)
            inspect = json.loads(docker(daemon, "image", "inspect", ref).stdout)[0]
            assert inspect["Id"] == image.config.digest
            checked = daemon_check(daemon)
            assert checked.returncode == 0 and checked.stdout == "", checked.stdout
    finally:
        loop.run(served.__aexit__(None, None, None))
        loop.close()
