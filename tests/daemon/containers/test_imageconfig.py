"""Docker's create-time merge of request and image config, and the process it yields."""

from __future__ import annotations

from typing import Any

import pytest

from declarun.daemon.containers.config.defaults import DEFAULT_PATH
from declarun.daemon.containers.config.imageconfig import (
    ImageConfig,
    merge_image_config,
    process_args,
    process_env,
)
from declarun.daemon.containers.config.request import (
    ContainerConfig,
    InvalidCreateRequest,
    parse_create_request,
)

IMAGE = ImageConfig.from_json(
    {
        "architecture": "amd64",
        "config": {
            "User": "app",
            "Env": ["PATH=/opt/bin:/bin", "LANG=C", "MODE=image"],
            "Entrypoint": ["/entry.sh"],
            "Cmd": ["serve", "--port", "80"],
            "WorkingDir": "/srv",
            "ExposedPorts": {"80/tcp": {}},
            "StopSignal": "SIGQUIT",
            "Healthcheck": {"Test": ["CMD", "check"], "Interval": 30_000_000_000, "Retries": 3},
            "Labels": {"vendor": "acme", "tier": "image"},
            "Volumes": {"/data": {}},
        },
    }
)


def merged(**request: Any) -> ContainerConfig:
    req = parse_create_request({"Image": "img", **request})
    return merge_image_config(req.config, IMAGE)


def test_image_fields_fill_an_empty_request() -> None:
    config = merged()
    assert process_args(config) == ("/entry.sh", "serve", "--port", "80")
    assert config.user == "app" and config.working_dir == "/srv"
    assert config.stop_signal == "SIGQUIT" and config.volumes == ("/data",)
    assert config.env == ("PATH=/opt/bin:/bin", "LANG=C", "MODE=image")


def test_env_merged_by_key_request_wins() -> None:
    config = merged(Env=["MODE=request", "EXTRA=1"])
    assert config.env == ("MODE=request", "EXTRA=1", "PATH=/opt/bin:/bin", "LANG=C")


def test_cmd_replaces_image_cmd_keeps_entrypoint() -> None:
    assert process_args(merged(Cmd=["debug"])) == ("/entry.sh", "debug")


def test_entrypoint_drops_image_cmd() -> None:
    assert process_args(merged(Entrypoint=["/bin/sh"])) == ("/bin/sh",)
    assert process_args(merged(Entrypoint=["/bin/sh", "-c"], Cmd=["echo hi"])) == (
        "/bin/sh", "-c", "echo hi",
    )  # fmt: skip


def test_empty_entrypoint_clears_image_entrypoint() -> None:
    assert process_args(merged(Entrypoint="", Cmd=["echo", "hi"])) == ("echo", "hi")
    assert process_args(merged(Entrypoint=[], Cmd=["echo"])) == ("echo",)


def test_nothing_to_run_is_refused() -> None:
    bare = ImageConfig()
    req = parse_create_request({"Image": "img"})
    with pytest.raises(InvalidCreateRequest, match="No command specified"):
        merge_image_config(req.config, bare)


def test_labels_ports_user_workdir_merge() -> None:
    config = merged(
        Labels={"tier": "request"},
        ExposedPorts={"443/tcp": {}},
        User="root",
        WorkingDir="/tmp",
        StopSignal="SIGTERM",
    )
    assert dict(config.labels) == {"vendor": "acme", "tier": "request"}
    assert config.exposed_ports == ("443/tcp", "80/tcp")
    assert (config.user, config.working_dir, config.stop_signal) == ("root", "/tmp", "SIGTERM")


def test_healthcheck_merged_field_wise_and_disabled_by_none() -> None:
    check = merged(Healthcheck={"Interval": 5_000_000_000}).healthcheck
    assert check is not None
    assert (check.test, check.interval, check.retries) == (("CMD", "check"), 5_000_000_000, 3)
    disabled = merged(Healthcheck={"Test": ["NONE"]}).healthcheck
    assert disabled is not None and disabled.disabled


def test_process_env_defaults_path_hostname_term() -> None:
    config = merge_image_config(
        parse_create_request({"Image": "i", "Tty": True, "Env": ["A=1"]}).config,
        ImageConfig(cmd=("sh",)),
    )
    env = process_env(config, hostname="abc123")
    assert env == (f"PATH={DEFAULT_PATH}", "HOSTNAME=abc123", "TERM=xterm", "A=1")


def test_process_env_image_path_replaces_default_and_bare_key_unsets() -> None:
    config = merged(Env=["LANG"])
    env = process_env(config, hostname="h")
    assert env[0] == "PATH=/opt/bin:/bin"
    assert not any(e.startswith("LANG") for e in env)


def test_image_config_alone_or_whole_document() -> None:
    assert ImageConfig.from_json({"Cmd": ["sh"]}).cmd == ("sh",)
    with pytest.raises(InvalidCreateRequest, match="image config Env"):
        ImageConfig.from_json({"config": {"Env": "PATH=/bin"}})
