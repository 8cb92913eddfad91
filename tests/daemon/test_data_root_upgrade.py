"""A data root written before volumes and networks moved into the metadata database keeps
them: the real daemon imports the old JSON files at its first start, and "which containers
use this volume / network" is then answered by the database."""

from __future__ import annotations

import json
from pathlib import Path

from tests.daemon.conftest import PushedImage
from tests.daemon.containers.daemon_fixtures import needs_runtime, pull_image
from tests.daemon.images.daemon_support import docker
from tests.daemon.networks.conftest import needs_real_network
from tests.daemon.networks.daemon_net import network_daemon

pytestmark = [needs_runtime, needs_real_network]

LEGACY = "5e" * 32
NONE = "6e" * 32
SUBNET, GATEWAY = "10.231.97.0/24", "10.231.97.1"


def _write_old_data_root(root: Path) -> None:
    """Volumes and networks exactly as the code before the metadata database stored them."""
    volume = root / "volumes" / "kept"
    (volume / "_data").mkdir(parents=True)
    (volume / "_data" / "greeting").write_text("from before\n")
    (volume / "volume.json").write_text(json.dumps({
        "Name": "kept", "Driver": "local", "CreatedAt": "2024-05-01T10:00:00Z",
        "Labels": {"era": "json"}, "Options": {},
    }))  # fmt: skip
    networks = root / "network" / "networks"
    networks.mkdir(parents=True)
    (networks / f"{LEGACY}.json").write_text(json.dumps({
        "id": LEGACY, "name": "legacy", "driver": "bridge",
        "created": "2024-05-01T10:00:00.000000Z", "subnet": SUBNET, "gateway": GATEWAY,
        "ip_range": None, "internal": False, "attachable": False, "builtin": False,
        "labels": {"era": "json"}, "options": {}, "ipam_options": {}, "configured": True,
    }))  # fmt: skip
    (networks / f"{NONE}.json").write_text(json.dumps({
        "id": NONE, "name": "none", "driver": "null",
        "created": "2024-05-01T10:00:00.000000Z", "subnet": None, "gateway": None,
        "ip_range": None, "internal": False, "attachable": False, "builtin": True,
        "labels": {}, "options": {}, "ipam_options": {}, "configured": False,
    }))  # fmt: skip


def test_a_data_root_from_before_keeps_its_volumes_and_networks(
    tmp_path: Path, busybox_image_pushed: PushedImage
) -> None:
    root = tmp_path / "declarund-root"
    _write_old_data_root(root)
    with network_daemon(tmp_path) as daemon:
        volume = json.loads(docker(daemon, "volume", "inspect", "kept").stdout)[0]
        assert volume["Labels"] == {"era": "json"}
        assert volume["CreatedAt"] == "2024-05-01T10:00:00Z"
        network = json.loads(docker(daemon, "network", "inspect", "legacy").stdout)[0]
        assert network["Id"] == LEGACY and network["Labels"] == {"era": "json"}
        assert network["IPAM"]["Config"] == [{"Subnet": SUBNET, "Gateway": GATEWAY}]
        none = docker(daemon, "network", "inspect", "--format", "{{.Id}}", "none").stdout
        assert none.strip() == NONE  # the stored built-in, not a second one
        names = docker(daemon, "network", "ls", "--format", "{{.Name}}").stdout.split()
        assert sorted(names) == ["bridge", "host", "legacy", "none"]
        assert not (root / "volumes" / "kept" / "volume.json").exists()
        assert not (root / "network" / "networks").exists()

        image = pull_image(daemon, busybox_image_pushed.reference)
        out = docker(daemon, "run", "--rm", "--network", "legacy", "-v", "kept:/data", image,
                     "cat", "/data/greeting").stdout  # fmt: skip
        assert out == "from before\n"
        busy = docker(daemon, "run", "-d", "--name", "busy", "--network", "legacy",
                      "-v", "kept:/data", image, "sleep", "300").stdout.strip()  # fmt: skip
        refused = docker(daemon, "volume", "rm", "kept", check=False)
        assert refused.returncode != 0 and "volume is in use" in refused.stderr
        assert busy in refused.stderr
        refused = docker(daemon, "network", "rm", "legacy", check=False)
        assert refused.returncode != 0 and "has active endpoints" in refused.stderr
        dangling = docker(daemon, "volume", "ls", "-q", "--filter", "dangling=true").stdout
        assert "kept" not in dangling.split()
        listed = docker(daemon, "network", "ls", "-q", "--filter", "dangling=true").stdout
        assert LEGACY[:12] not in listed.split()

        docker(daemon, "rm", "-f", "busy")
        docker(daemon, "network", "rm", "legacy")
        docker(daemon, "volume", "rm", "kept")
        assert not (root / "volumes" / "kept").exists()
