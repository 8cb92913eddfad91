"""Parsing and validation of create requests: typed values, Docker's messages, inspect shapes."""

from __future__ import annotations

from typing import Any

import pytest

from declarun.daemon.containers.config.request import (
    InvalidCreateRequest,
    parse_create_request,
    parse_stop_signal,
)
from declarun.errors import DaemonError


def parse(host: dict[str, Any] | None = None, **config: Any) -> Any:
    body: dict[str, Any] = {"Image": "busybox", **config}
    if host is not None:
        body["HostConfig"] = host
    return parse_create_request(body, path_exists=lambda p: p.startswith("/exists"), cpu_count=4)


def test_typical_request_is_typed() -> None:
    req = parse_create_request(
        {
            "Image": "busybox",
            "Hostname": "web",
            "User": "app:staff",
            "Env": ["A=1", "B"],
            "Cmd": "echo hi",
            "Entrypoint": ["/bin/sh", "-c"],
            "WorkingDir": "/srv/../app/",
            "Labels": {"tier": "web"},
            "ExposedPorts": {"80": {}, "53/udp": {}},
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 2_000_000_000, "Retries": 3},
            "StopSignal": "SIGINT",
            "StopTimeout": 5,
            "Tty": True,
            "HostConfig": {
                "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
                "CapAdd": ["net_admin"],
                "Memory": 64 << 20,
                "NanoCpus": 1_500_000_000,
                "PidsLimit": -1,
                "Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200}],
                "NetworkMode": "none",
                "PortBindings": {"80": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]},
                "Sysctls": {"net.ipv4.ip_forward": "1"},
            },
        },
        name="/web-1",
        cpu_count=4,
    )
    c, h = req.config, req.host_config
    assert req.name == "web-1"
    assert c.cmd == ("echo hi",) and c.entrypoint == ("/bin/sh", "-c")
    assert c.working_dir == "/app" and c.user == "app:staff" and c.tty
    assert c.exposed_ports == ("80/tcp", "53/udp")
    assert c.healthcheck is not None and c.healthcheck.retries == 3
    assert h.restart_policy.name == "on-failure" and h.restart_policy.maximum_retry_count == 3
    assert h.cap_add == ("net_admin",) and h.memory == 64 << 20 and h.pids_limit is None
    assert h.ulimits[0].soft == 100 and h.network_mode == "none"
    assert h.port_bindings["80/tcp"][0].host_port == "8080"
    assert h.no_new_privileges and hash(req)


def test_absent_and_empty_entrypoint_differ() -> None:
    assert parse().config.entrypoint is None
    assert parse(Entrypoint=[]).config.entrypoint == ()
    assert parse(Entrypoint="").config.entrypoint == ("",)


def test_defaults_in_inspect_shape() -> None:
    inspect = parse().to_inspect()
    host = inspect["HostConfig"]
    assert host["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert host["NetworkMode"] == "bridge" and host["ShmSize"] == 64 * 1024 * 1024
    assert host["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert host["Init"] is None and host["Binds"] is None and host["AutoRemove"] is False
    config = inspect["Config"]
    assert config["Image"] == "busybox" and config["Cmd"] is None and config["Labels"] == {}
    assert "Healthcheck" not in config and "StopSignal" not in config


def test_inspect_round_trips_request_values() -> None:
    req = parse(
        {"Binds": ["/exists/a:/a:ro"], "Mounts": [{"Type": "tmpfs", "Target": "/t"}]},
        ExposedPorts={"80/tcp": {}},
        Healthcheck={"Test": ["NONE"]},
    )
    inspect = req.to_inspect()
    assert inspect["HostConfig"]["Binds"] == ["/exists/a:/a:ro"]
    assert inspect["HostConfig"]["Mounts"] == [{"Type": "tmpfs", "Target": "/t"}]
    assert inspect["Config"]["ExposedPorts"] == {"80/tcp": {}}
    assert inspect["Config"]["Healthcheck"] == {"Test": ["NONE"]}
    assert req.config.healthcheck is not None and req.config.healthcheck.disabled


def test_binds_named_volume_bind_and_modes() -> None:
    mounts = parse(
        {"Binds": ["/exists/src:/data:ro,z", "cache:/cache", "/anon", "/missing:/m:rw,rslave"]}
    ).host_config.mounts
    bind, vol, anon, missing = mounts
    assert (bind.type, bind.source, bind.read_only, bind.selinux_label) == (
        "bind", "/exists/src", True, "z",
    )  # fmt: skip
    assert (vol.type, vol.source, vol.read_only) == ("volume", "cache", False)
    assert (anon.type, anon.source, anon.target) == ("volume", "", "/anon")
    # Binds create a missing source, as Docker does; --mount refuses it.
    assert missing.create_source and missing.propagation == "rslave"


def test_mounts_and_tmpfs() -> None:
    hc = parse(
        {
            "Mounts": [
                {"Type": "bind", "Source": "/exists/x", "Target": "/x", "ReadOnly": True},
                {"Type": "volume", "Source": "vol1", "Target": "/v",
                 "VolumeOptions": {"NoCopy": True, "Labels": {"a": "b"}}},
                {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1024, "Mode": 0o700}},
            ],
            "Tmpfs": {"/run": "rw,noexec,size=64m"},
        }
    ).host_config  # fmt: skip
    bind, vol, tmp, run = hc.mounts
    assert bind.read_only and vol.no_copy and vol.volume_labels == {"a": "b"}
    assert tmp.tmpfs_options == ("size=1024", "mode=700")
    assert run.origin == "Tmpfs" and run.tmpfs_options == ("noexec", "size=64m")


@pytest.mark.parametrize(
    ("host", "config", "message"),
    [
        ({"RestartPolicy": {"Name": "sometimes"}}, {}, "invalid restart policy: unknown policy 'sometimes'"),
        ({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 2}}, {},
         "maximum retry count can only be used with 'on-failure'"),
        ({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": -1}}, {},
         "maximum retry count cannot be negative"),
        ({"AutoRemove": True, "RestartPolicy": {"Name": "always"}}, {},
         "can't create 'AutoRemove' container with restart policy"),
        ({"Mounts": [{"Type": "bind", "Source": "/x", "Target": "/x"}]}, {},
         'invalid mount config for type "bind": bind source path does not exist: /x'),
        ({"Mounts": [{"Type": "bind", "Source": "/exists", "Target": "rel"}]}, {},
         "invalid mount path: 'rel' mount path must be absolute"),
        ({"Mounts": [{"Type": "tmpfs", "Source": "x", "Target": "/t"}]}, {},
         'invalid mount config for type "tmpfs": field Source must not be specified'),
        ({"Mounts": [{"Type": "nfs", "Target": "/t"}]}, {}, "mount type unknown"),
        ({"Mounts": [{"Type": "volume", "Target": "/t", "BindOptions": {}}]}, {},
         "field BindOptions must not be specified"),
        ({"Binds": ["/a:/data", "b1:/data"]}, {}, "Duplicate mount point: /data"),
        ({"Binds": ["/a:/data:rx"]}, {}, "invalid mode: rx"),
        ({"Binds": ["/a:/b:/c:/d"]}, {}, "invalid volume specification: '/a:/b:/c:/d'"),
        ({"Binds": ["bad name!:/d"]}, {}, "includes invalid characters for a local volume name"),
        ({"Binds": ["/a:/"]}, {}, "destination can't be '/'"),
        ({"Tmpfs": {"/t": "size=1m,evil"}}, {}, "invalid tmpfs option"),
        ({"Memory": -1}, {}, "invalid Memory"),
        ({"Memory": 1024}, {}, "Minimum memory limit allowed is 6MB"),
        ({"Memory": 64 << 20, "MemorySwap": 32 << 20}, {}, "Minimum memoryswap limit"),
        ({"MemorySwap": 32 << 20}, {}, "You should always set the Memory limit"),
        ({"NanoCpus": 10**9, "CpuQuota": 50000}, {}, "Nano CPUs and CPU Quota cannot both be set"),
        ({"NanoCpus": 5 * 10**9}, {}, "Range of CPUs is from 0.01 to 4.00"),
        ({"CpuPeriod": 10}, {}, "CPU cfs period can not be less than 1ms"),
        ({"OomScoreAdj": 2000}, {}, "range for oom score adj is [-1000, 1000]"),
        ({"ShmSize": -1}, {}, "SHM size can not be less than 0"),
        ({"CapAdd": ["NOT_A_CAP"]}, {}, 'unknown capability: "CAP_NOT_A_CAP"'),
        ({"Sysctls": {"kernel.hostname": "x"}}, {}, "sysctl 'kernel.hostname' is not whitelisted"),
        ({"NetworkMode": "host", "Sysctls": {"net.core.somaxconn": "1"}}, {}, "host's network namespace"),
        ({"Ulimits": [{"Name": "nofiles", "Soft": 1, "Hard": 1}]}, {}, "invalid ulimit type: nofiles"),
        ({"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 5}]}, {}, "soft limit must be less than or equal to hard limit: 10 > 5"),
        ({"PortBindings": {"http": []}}, {}, 'invalid port specification: "http"'),
        ({"ExtraHosts": ["db:not-an-ip"]}, {}, "invalid IP address in add-host"),
        ({"Memory": "lots"}, {}, "invalid value for Memory: expected an integer, got str"),
        ({"PidMode": "container:x"}, {}, "invalid PID mode"),
        ({}, {"Healthcheck": {"Interval": 10}}, "Interval in Healthcheck cannot be less than 1ms"),
        ({}, {"Healthcheck": {"Retries": -1}}, "Retries in Healthcheck cannot be negative"),
        ({}, {"WorkingDir": "rel"}, "the working directory 'rel' is invalid, it needs to be an absolute path"),
        ({}, {"StopSignal": "SIGNOPE"}, "invalid signal: SIGNOPE"),
        ({}, {"Env": ["=x"]}, "invalid environment variable: =x"),
        ({}, {"Env": "A=1"}, "invalid value for Env"),
        ({}, {"Image": ""}, "Config cannot be empty"),
    ],
)  # fmt: skip
def test_invalid_requests_get_dockers_message(
    host: dict[str, Any], config: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidCreateRequest) as caught:
        parse(host, **config)
    assert message in str(caught.value)
    assert isinstance(caught.value, DaemonError)


def test_invalid_name_and_body() -> None:
    with pytest.raises(InvalidCreateRequest, match=r"Invalid container name \(a b\)"):
        parse_create_request({"Image": "x"}, name="a b")
    with pytest.raises(InvalidCreateRequest):
        parse_create_request(["not", "an", "object"])


def test_capabilities_are_accepted_in_every_spelling() -> None:
    hc = parse({"CapAdd": ["net_admin", "CAP_SYS_TIME", "ALL"], "CapDrop": ["mknod"]}).host_config
    assert hc.cap_add == ("net_admin", "CAP_SYS_TIME", "ALL")


def test_security_opt_no_new_privileges() -> None:
    assert parse().host_config.no_new_privileges
    assert not parse({"SecurityOpt": ["no-new-privileges:false"]}).host_config.no_new_privileges
    assert parse({"SecurityOpt": ["seccomp=unconfined"]}).host_config.seccomp_unconfined
    assert not parse(
        {"Privileged": True, "SecurityOpt": ["label=disable"]}
    ).host_config.no_new_privileges
    assert parse(
        {"Privileged": True, "SecurityOpt": ["no-new-privileges"]}
    ).host_config.no_new_privileges
    with pytest.raises(InvalidCreateRequest, match="invalid --security-opt"):
        parse({"SecurityOpt": ["bogus"]})
    with pytest.raises(InvalidCreateRequest, match="other than unconfined"):
        parse({"SecurityOpt": ["seccomp=/p.json"]})


def test_stop_signals() -> None:
    assert parse_stop_signal("SIGTERM") == 15
    assert parse_stop_signal("kill") == 9
    assert parse_stop_signal("2") == 2
    assert parse_stop_signal("SIGRTMIN+3") > 32
