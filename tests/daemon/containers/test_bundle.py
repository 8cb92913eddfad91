"""OCI bundles: the spec's shape (pure), then the same specs run by the real runc."""

from __future__ import annotations

import os
import resource
from pathlib import Path
from typing import Any

import pytest

from declarun.daemon.containers.config.caps import capability_mask, effective_capabilities
from declarun.daemon.containers.config.defaults import ALL_CAPABILITIES, DEFAULT_CAPABILITIES
from declarun.daemon.containers.config.imageconfig import ImageConfig, merge_image_config
from declarun.daemon.containers.config.request import parse_create_request
from declarun.daemon.containers.runtime.bundle import BundleInputs, build_spec
from declarun.daemon.containers.runtime.hostfacts import RLIM_INFINITY, HostFacts, host_facts
from declarun.daemon.containers.runtime.users import ResolvedUser
from declarun.frozen import FrozenDict
from tests.daemon.containers.runc_helpers import needs_runc, run_container

DOCKER_DEFAULT_CAPBND = "00000000a80425fb"
FACTS = HostFacts(
    hard_limits=FrozenDict({"RLIMIT_NOFILE": 20000, "RLIMIT_CORE": RLIM_INFINITY}),
    capabilities=frozenset(ALL_CAPABILITIES) - {"CAP_SYS_RESOURCE"},
    oom_score_adj=0,
    machine="x86_64",
)


def spec_for(body: dict[str, Any], **inputs: Any) -> dict[str, Any]:
    request = parse_create_request({"Image": "i", **body}, path_exists=lambda _: True)
    config = merge_image_config(request.config, ImageConfig(cmd=("sh",)))
    return build_spec(
        BundleInputs(
            container_id="c1", rootfs=Path("/r"), config=config,
            host_config=request.host_config, user=ResolvedUser(0, 0, (), "/root"),
            hostname="c1host", **inputs,
        ),
        FACTS,
    )  # fmt: skip


# --- the spec, without running it ---------------------------------------------------------


def test_default_spec_matches_dockers_shape() -> None:
    spec = spec_for({})
    process, linux = spec["process"], spec["linux"]
    assert spec["ociVersion"] == "1.0.2" and spec["hostname"] == "c1host"
    assert process["args"] == ["sh"] and process["cwd"] == "/"
    assert process["env"][:2] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOSTNAME=c1host",
    ]
    assert "HOME=/root" in process["env"]
    assert set(process["capabilities"]) == {"bounding", "effective", "permitted"}
    assert process["capabilities"]["bounding"] == list(DEFAULT_CAPABILITIES)
    assert process["noNewPrivileges"] is True
    assert [m["destination"] for m in spec["mounts"]] == [
        "/proc",
        "/dev",
        "/dev/pts",
        "/sys",
        "/sys/fs/cgroup",
        "/dev/mqueue",
        "/dev/shm",
    ]
    assert "size=67108864" in spec["mounts"][-1]["options"]
    assert {n["type"] for n in linux["namespaces"]} == {"mount", "network", "uts", "pid", "ipc"}
    assert "/proc/kcore" in linux["maskedPaths"] and "/proc/sys" in linux["readonlyPaths"]
    assert linux["resources"]["devices"][0] == {"allow": False, "access": "rwm"}
    assert linux["cgroupsPath"] == "/declarun/c1"
    assert linux["seccomp"]["defaultAction"] == "SCMP_ACT_ALLOW"
    assert "mount" in linux["seccomp"]["syscalls"][0]["names"]
    assert spec["root"] == {"path": "/r", "readonly": False}
    assert process["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 20000}]


def test_docker_default_capability_mask() -> None:
    assert f"{capability_mask(DEFAULT_CAPABILITIES):016x}" == DOCKER_DEFAULT_CAPBND


@pytest.mark.parametrize(
    ("add", "drop", "privileged", "expected"),
    [
        (["NET_ADMIN"], ["mknod", "CAP_KILL"], False,
         [c for c in DEFAULT_CAPABILITIES if c not in ("CAP_MKNOD", "CAP_KILL")] + ["CAP_NET_ADMIN"]),
        (["chown"], ["ALL"], False, ["CAP_CHOWN"]),
        (["ALL"], ["SYS_ADMIN"], False, [c for c in ALL_CAPABILITIES if c != "CAP_SYS_ADMIN"]),
        ([], [], True, list(ALL_CAPABILITIES)),
    ],
)  # fmt: skip
def test_capability_arithmetic(
    add: list[str], drop: list[str], privileged: bool, expected: list[str]
) -> None:
    assert list(effective_capabilities(add, drop, privileged=privileged)) == expected


def test_capabilities_clamped_to_what_the_daemon_holds() -> None:
    caps = spec_for({"HostConfig": {"Privileged": True}})["process"]["capabilities"]
    assert "CAP_SYS_RESOURCE" not in caps["bounding"] and "CAP_SYS_ADMIN" in caps["bounding"]


def test_privileged_drops_confinement() -> None:
    spec = spec_for({"HostConfig": {"Privileged": True}})
    linux = spec["linux"]
    assert "maskedPaths" not in linux and "seccomp" not in linux
    assert linux["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert "ro" not in spec["mounts"][3]["options"]  # /sys
    assert spec["process"]["noNewPrivileges"] is False


def test_resources() -> None:
    linux = spec_for(
        {"HostConfig": {"Memory": 64 << 20, "NanoCpus": 1_500_000_000, "CpuShares": 512,
                        "PidsLimit": 20, "MemorySwap": -1, "OomKillDisable": True}}
    )["linux"]  # fmt: skip
    res = linux["resources"]
    assert res["memory"] == {"limit": 64 << 20, "swap": -1, "disableOOMKiller": True}
    assert res["cpu"] == {"shares": 512, "period": 100000, "quota": 150000}
    assert res["pids"] == {"limit": 20}
    assert spec_for({"HostConfig": {"Memory": 8 << 20}})["linux"]["resources"]["memory"] == {
        "limit": 8 << 20, "swap": 16 << 20,
    }  # fmt: skip


def test_rlimits_never_exceed_the_daemons_hard_limits() -> None:
    ulimits = [{"Name": "nofile", "Soft": 50000, "Hard": 90000},
               {"Name": "core", "Soft": -1, "Hard": -1}]  # fmt: skip
    rlimits = spec_for({"HostConfig": {"Ulimits": ulimits}})["process"]["rlimits"]
    assert {"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 20000} in rlimits
    assert {"type": "RLIMIT_CORE", "hard": RLIM_INFINITY, "soft": RLIM_INFINITY} in rlimits


def test_oom_score_not_below_the_daemons() -> None:
    assert spec_for({"HostConfig": {"OomScoreAdj": -500}})["process"]["oomScoreAdj"] == 0
    assert spec_for({"HostConfig": {"OomScoreAdj": 300}})["process"]["oomScoreAdj"] == 300


def test_user_mounts_etc_files_and_network_modes() -> None:
    spec = spec_for(
        {"HostConfig": {"Binds": ["/h/a/b:/data/sub:ro", "/h/a:/data", "vol:/v"],
                        "Tmpfs": {"/run": "size=1m"}, "NetworkMode": "host",
                        "ReadonlyRootfs": True, "Init": True}},
        volume_paths={"/v": Path("/var/lib/vol/_data")},
        etc_files={"/etc/hosts": Path("/d/hosts"), "/etc/resolv.conf": Path("/d/resolv")},
        init_binary=Path("/usr/bin/docker-init"),
    )  # fmt: skip
    user = {m["destination"]: m for m in spec["mounts"][7:]}
    order = [m["destination"] for m in spec["mounts"][7:]]
    assert order.index("/data") < order.index("/data/sub")
    assert user["/data/sub"]["options"] == ["rbind", "rprivate", "ro"]
    assert user["/v"]["source"] == "/var/lib/vol/_data"
    assert user["/run"]["options"] == ["noexec", "nosuid", "nodev", "size=1m", "rw"]
    assert user["/etc/hosts"]["options"][-1] == "ro"  # read-only rootfs: read-only etc files
    assert spec["process"]["args"][:2] == ["/sbin/docker-init", "--"]
    assert "network" not in {n["type"] for n in spec["linux"]["namespaces"]}
    joined = spec_for({}, network_namespace="/run/netns/x")["linux"]["namespaces"]
    assert {"type": "network", "path": "/run/netns/x"} in joined


def test_a_user_mount_replaces_the_default_at_the_same_place() -> None:
    spec = spec_for({"HostConfig": {"Binds": ["/h/shm:/dev/shm"]}})
    shm = [m for m in spec["mounts"] if m["destination"] == "/dev/shm"]
    assert len(shm) == 1 and shm[0]["type"] == "bind"


def test_host_facts_read_this_process() -> None:
    facts = host_facts()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert facts.hard_limits["RLIMIT_NOFILE"] == (RLIM_INFINITY if hard < 0 else hard)
    assert "CAP_CHOWN" in facts.capabilities or os.geteuid() != 0


# --- the real runtime -----------------------------------------------------------------------


@needs_runc
def test_echo_and_exit_codes(tmp_path: Path) -> None:
    ran = run_container(tmp_path, {"Cmd": ["echo", "hi"]})
    assert (ran.code, ran.stdout, ran.stderr) == (0, "hi\n", "")
    assert run_container(tmp_path / "2", {"Cmd": ["sh", "-c", "exit 42"]}).code == 42


@needs_runc
def test_user_hostname_env_cwd(tmp_path: Path) -> None:
    script = "id; hostname; echo HOME=$HOME; pwd; echo PATH=$PATH"
    ran = run_container(
        tmp_path,
        {"User": "app", "Hostname": "boxy", "WorkingDir": "/tmp", "Cmd": ["sh", "-c", script]},
    )
    assert ran.code == 0, ran.stderr
    assert ran.stdout.splitlines() == [
        "uid=1000(app) gid=1000(app) groups=50(staff),63(audio)",
        "boxy", "HOME=/home/app", "/tmp", "PATH=/bin",
    ]  # fmt: skip


@needs_runc
def test_capabilities_seccomp_and_no_new_privileges(tmp_path: Path) -> None:
    ran = run_container(
        tmp_path,
        {"Cmd": ["grep", "-E", "^(CapBnd|CapEff|NoNewPrivs|Seccomp):", "/proc/self/status"]},
    )
    fields = dict(line.split(":\t") for line in ran.stdout.splitlines())
    assert fields == {"CapBnd": DOCKER_DEFAULT_CAPBND, "CapEff": DOCKER_DEFAULT_CAPBND,
                      "NoNewPrivs": "1", "Seccomp": "2"}  # fmt: skip
    dropped = run_container(
        tmp_path / "2",
        {"HostConfig": {"CapDrop": ["ALL"], "CapAdd": ["net_admin"]},
         "Cmd": ["grep", "CapBnd", "/proc/self/status"]},
    )  # fmt: skip
    assert dropped.stdout.split()[-1] == f"{1 << 12:016x}"


@needs_runc
def test_seccomp_profile_blocks_what_capabilities_alone_would_allow(tmp_path: Path) -> None:
    # A user namespace needs no capability, so only the seccomp profile stops it.
    script = "unshare -U true && echo unshared"
    confined = run_container(tmp_path, {"Cmd": ["sh", "-c", script]})
    assert confined.code != 0 and "Operation not permitted" in confined.stderr
    unconfined = run_container(
        tmp_path / "2",
        {"HostConfig": {"SecurityOpt": ["seccomp=unconfined"]}, "Cmd": ["sh", "-c", script]},
    )
    assert unconfined.stdout == "unshared\n", unconfined.stderr
    # CAP_SYS_ADMIN lifts the block on mount, as in Docker's profile.
    mount = "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo mounted"
    admin = run_container(
        tmp_path / "3", {"HostConfig": {"CapAdd": ["SYS_ADMIN"]}, "Cmd": ["sh", "-c", mount]}
    )
    assert admin.stdout == "mounted\n", admin.stderr


@needs_runc
def test_readonly_rootfs_refuses_writes_but_tmpfs_takes_them(tmp_path: Path) -> None:
    script = (
        "touch /x; echo rc=$?; touch /scratch/y && echo tmpfs-ok; grep ' /scratch ' /proc/mounts"
    )
    ran = run_container(
        tmp_path,
        {"HostConfig": {"ReadonlyRootfs": True, "Tmpfs": {"/scratch": "size=1m"}},
         "Cmd": ["sh", "-c", script]},
    )  # fmt: skip
    assert "Read-only file system" in ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[0] == "rc=1" and lines[1] == "tmpfs-ok"
    assert lines[2].startswith("tmpfs /scratch tmpfs rw,nosuid,nodev,noexec")
    assert "size=1024k" in lines[2]


@needs_runc
def test_memory_limit_in_the_containers_cgroup(tmp_path: Path) -> None:
    ran = run_container(
        tmp_path,
        {"HostConfig": {"Memory": 48 << 20},
         "Cmd": ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]},
    )  # fmt: skip
    assert ran.stdout.strip() == str(48 << 20), ran.stderr


@needs_runc
def test_pids_limit_stops_a_fork_loop(tmp_path: Path) -> None:
    # Forty background sleepers; with a limit of 10 tasks the shell fails to fork.
    script = "for i in $(seq 40); do sleep 5 & done; echo all-forked"
    limited = run_container(
        tmp_path, {"HostConfig": {"PidsLimit": 10}, "Cmd": ["sh", "-c", script]}
    )
    assert "all-forked" not in limited.stdout
    assert "fork" in limited.stderr.lower()
    unlimited = run_container(tmp_path / "2", {"Cmd": ["sh", "-c", script]})
    assert unlimited.stdout == "all-forked\n"


@needs_runc
def test_masked_and_readonly_proc_paths(tmp_path: Path) -> None:
    files = [p for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list") if os.path.exists(p)]
    dirs = [p for p in ("/proc/acpi", "/proc/scsi", "/sys/firmware") if os.path.isdir(p)]
    if not files or not dirs:
        pytest.skip("no maskable /proc paths on this kernel")
    script = (
        f"stat -c %t:%T {files[0]}; ls -A {dirs[0]} | wc -l; "
        "echo 1 > /proc/sys/kernel/printk_ratelimit; echo rc=$?"
    )
    ran = run_container(tmp_path, {"Cmd": ["sh", "-c", script]})
    # masked files become /dev/null (char 1:3), masked dirs an empty read-only tmpfs
    assert ran.stdout.splitlines() == ["1:3", "0", "rc=1"], ran.stderr


@needs_runc
def test_binds_volumes_and_etc_files(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in.txt").write_text("from-host\n")
    volume = tmp_path / "volume"
    volume.mkdir()
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n10.1.2.3 db\n")
    script = (
        "cat /ro/in.txt; echo x > /ro/new 2>/dev/null || echo ro-refused; "
        "echo written > /rw/out.txt; echo vol > /vol/v.txt; grep db /etc/hosts"
    )
    ran = run_container(
        tmp_path,
        {"HostConfig": {"Binds": [f"{shared}:/ro:ro", f"{shared}:/rw", "data:/vol"]},
         "Cmd": ["sh", "-c", script]},
        volume_paths={"/vol": volume},
        etc_files={"/etc/hosts": hosts},
    )  # fmt: skip
    assert ran.stdout.splitlines() == ["from-host", "ro-refused", "10.1.2.3 db"], ran.stderr
    assert (shared / "out.txt").read_text() == "written\n"
    assert (volume / "v.txt").read_text() == "vol\n"


@needs_runc
def test_network_none_has_only_loopback(tmp_path: Path) -> None:
    ran = run_container(
        tmp_path, {"HostConfig": {"NetworkMode": "none"}, "Cmd": ["ls", "/sys/class/net"]}
    )
    assert ran.stdout.split() == ["lo"], ran.stderr


@needs_runc
def test_ulimits_reach_the_process(tmp_path: Path) -> None:
    ran = run_container(
        tmp_path,
        {"HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200}]},
         "Cmd": ["sh", "-c", "ulimit -n; ulimit -Hn"]},
    )  # fmt: skip
    assert ran.stdout.split() == ["100", "200"], ran.stderr
    default = run_container(tmp_path / "2", {"Cmd": ["sh", "-c", "ulimit -n"]})
    expected = min(1_048_576, resource.getrlimit(resource.RLIMIT_NOFILE)[1] % 2**64)
    assert default.stdout.strip() == str(expected), default.stderr
